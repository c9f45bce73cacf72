import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateResource } from '../../server/validation/validate-resource';
import { fhirRequest } from '../support/fhir-client';
import { HL7_EXAMPLES_DIR } from '../support/hl7-examples';
import { loadSyntheaPatients } from '../support/synthea-load';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * Functional lists (R4 search.html#list): `AllergyIntolerance?patient=X&_list=$current-allergies`
 * on Synthea patients and on resources written to cover every status, each answer
 * compared with the same patient's resources of that type (read with `patient=` alone)
 * filtered here by the definition: active, never entered in error or refuted.
 */
type Resource = { resourceType: string; id: string; [key: string]: any };

let server: TestServer;
const patients: string[] = [];

const codes = (concept: unknown): string[] => ((concept as { coding?: { code?: string }[] } | undefined)?.coding ?? []).map((c) => c.code ?? '');
const notInError = (r: Resource): boolean => !codes(r.verificationStatus).some((c) => c === 'entered-in-error' || c === 'refuted');

/** The definitions, written out independently of the server's. */
const ORACLE: Record<string, Record<string, (r: Resource) => boolean>> = {
  '$current-problems': { Condition: (r) => codes(r.clinicalStatus).some((c) => ['active', 'recurrence', 'relapse'].includes(c)) && notInError(r) },
  '$current-medications': { MedicationStatement: (r) => r.status === 'active', MedicationRequest: (r) => r.status === 'active' },
  '$current-allergies': { AllergyIntolerance: (r) => codes(r.clinicalStatus).includes('active') && notInError(r) },
  '$current-drug-allergies': {
    AllergyIntolerance: (r) => codes(r.clinicalStatus).includes('active') && notInError(r) && (r.category ?? []).includes('medication'),
  },
};
const TYPES = ['Condition', 'MedicationStatement', 'MedicationRequest', 'AllergyIntolerance'];

async function matches(path: string): Promise<Resource[]> {
  const res = await fhirRequest('GET', `${server.base}/${path}`);
  expect({ path, status: res.status }).toEqual({ path, status: 200 });
  const bundle = res.body as { entry?: { resource: Resource; search?: { mode?: string } }[]; link?: { relation: string }[] };
  expect(bundle.link?.some((l) => l.relation === 'next')).toBeFalsy();
  return (bundle.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource);
}

const ids = (resources: Resource[]): string[] => resources.map((r) => r.id).sort();

async function post(body: unknown, status: number[]): Promise<any> {
  const res = await fhirRequest('POST', server.base, { body });
  expect(status).toContain(res.status);
  return res.body;
}

async function put(resource: Resource): Promise<void> {
  const res = await fhirRequest('PUT', `${server.base}/${resource.resourceType}/${resource.id}`, { body: resource });
  expect(res.status).toBeLessThan(300);
}

const concept = (system: string, code: string) => ({ coding: [{ system, code }] });
const allergyClinical = (code: string) => concept('http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code);
const allergyVerification = (code: string) => concept('http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', code);
const conditionClinical = (code: string) => concept('http://terminology.hl7.org/CodeSystem/condition-clinical', code);
const conditionVerification = (code: string) => concept('http://terminology.hl7.org/CodeSystem/condition-ver-status', code);

beforeAll(async () => {
  server = await startTestServer();
  patients.push(...(await loadSyntheaPatients(server.base, 6)));
  // One patient with every status the definitions tell apart.
  await put({ resourceType: 'Patient', id: 'fl-patient' });
  patients.push('fl-patient');
  const subject = { reference: 'Patient/fl-patient' };
  const allergy = (id: string, extra: Record<string, unknown>): Resource => ({ resourceType: 'AllergyIntolerance', id, patient: subject, code: { text: id }, ...extra });
  await put(allergy('a-drug', { clinicalStatus: allergyClinical('active'), verificationStatus: allergyVerification('confirmed'), category: ['medication'] }));
  await put(allergy('a-food', { clinicalStatus: allergyClinical('active'), category: ['food'] }));
  await put(allergy('a-resolved', { clinicalStatus: allergyClinical('resolved'), category: ['medication'] }));
  await put(allergy('a-refuted', { clinicalStatus: allergyClinical('active'), verificationStatus: allergyVerification('refuted'), category: ['medication'] }));
  await put(allergy('a-error', { verificationStatus: allergyVerification('entered-in-error'), category: ['medication'] }));
  const condition = (id: string, extra: Record<string, unknown>): Resource => ({ resourceType: 'Condition', id, subject, code: { text: id }, ...extra });
  await put(condition('c-active', { clinicalStatus: conditionClinical('active') }));
  await put(condition('c-relapse', { clinicalStatus: conditionClinical('relapse') }));
  await put(condition('c-resolved', { clinicalStatus: conditionClinical('resolved') }));
  await put(condition('c-refuted', { clinicalStatus: conditionClinical('active'), verificationStatus: conditionVerification('refuted') }));
  await put(condition('c-error', { verificationStatus: conditionVerification('entered-in-error') }));
  const medication = { medicationCodeableConcept: { text: 'aspirin' }, subject };
  for (const status of ['active', 'stopped', 'intended']) {
    await put({ resourceType: 'MedicationStatement', id: `ms-${status}`, status, ...medication });
    await put({ resourceType: 'MedicationRequest', id: `mr-${status === 'intended' ? 'draft' : status}`, status: status === 'intended' ? 'draft' : status, intent: 'order', ...medication });
  }
}, 300000);

afterAll(async () => {
  await server?.stop();
});

test('each functional list returns, per patient and type, exactly the resources its definition calls current', async () => {
  let listed = 0;
  let left = 0;
  for (const patient of patients) {
    for (const type of TYPES) {
      const all = await matches(`${type}?patient=Patient/${patient}&_count=1000`);
      for (const [name, perType] of Object.entries(ORACLE)) {
        const expected = perType[type] ? all.filter(perType[type]) : [];
        const got = await matches(`${type}?patient=Patient/${patient}&_list=${encodeURIComponent(name)}&_count=1000`);
        expect({ patient, type, name, ids: ids(got) }).toEqual({ patient, type, name, ids: ids(expected) });
        listed += expected.length;
        left += perType[type] ? all.length - expected.length : 0;
      }
    }
  }
  // The data must tell the definitions apart: some resources listed, some left out.
  expect(listed).toBeGreaterThan(20);
  expect(left).toBeGreaterThan(10);
  expect(ids(await matches('AllergyIntolerance?patient=fl-patient&_list=$current-drug-allergies'))).toEqual(['a-drug']);
});

test('several lists are ORed, with List ids too, repeats ANDed, and system search applies each type its own definition', async () => {
  const ofPatient = 'patient=Patient/fl-patient';
  expect(ids(await matches(`AllergyIntolerance?${ofPatient}&_list=$current-drug-allergies,$current-problems`))).toEqual(['a-drug']);
  expect(ids(await matches(`AllergyIntolerance?${ofPatient}&_list=$current-allergies&_list=$current-drug-allergies`))).toEqual(['a-drug']);
  await put({ resourceType: 'List', id: 'fl-list', status: 'current', mode: 'working', entry: [{ item: { reference: 'Condition/c-resolved' } }] });
  expect(ids(await matches(`Condition?${ofPatient}&_list=fl-list,$current-problems`))).toEqual(['c-active', 'c-relapse', 'c-resolved']);
  expect(await matches(`Condition?${ofPatient}&_list=$current-allergies`)).toEqual([]);
  const system = await matches(`?_type=Condition,AllergyIntolerance&${ofPatient}&_list=$current-allergies,$current-problems&_count=100`);
  expect(system.map((r) => `${r.resourceType}/${r.id}`).sort()).toEqual(['AllergyIntolerance/a-drug', 'AllergyIntolerance/a-food', 'Condition/c-active', 'Condition/c-relapse']);
  // The compartment gives the patient as well as `patient=` does.
  expect(ids(await matches('Patient/fl-patient/MedicationRequest?_list=$current-medications'))).toEqual(['mr-active']);
});

test('a functional list this server does not define is a 400 naming _list', async () => {
  const res = await fhirRequest('GET', `${server.base}/Condition?_list=$current-wishes`);
  expect(res.status).toBe(400);
  expect(JSON.stringify(res.body)).toContain('_list');
});

test("the specification's own batch of a patient's medications, allergies and problems answers every entry", async () => {
  const patient = JSON.parse(readFileSync(join(HL7_EXAMPLES_DIR, 'Patient-example.json'), 'utf8'));
  await put(patient);
  await put({ resourceType: 'AllergyIntolerance', id: 'fl-example-allergy', patient: { reference: 'Patient/example' }, clinicalStatus: allergyClinical('active'), code: { text: 'cashew' } });
  const batch = JSON.parse(readFileSync(join(HL7_EXAMPLES_DIR, 'Bundle-bundle-request-medsallergies.json'), 'utf8'));
  const response = await post(batch, [200]);
  expect(response.type).toBe('batch-response');
  const entries = response.entry as { response: { status: string }; resource?: { entry?: { resource: Resource }[] } }[];
  expect(entries.map((e) => e.response.status.split(' ')[0])).toEqual(batch.entry.map(() => '200'));
  expect(entries[2].resource?.entry?.map((e) => e.resource.id)).toEqual(['fl-example-allergy']);
});

test('List/$find returns a patient’s functional list as a valid List of the same resources, by GET or POST, and 404s what it cannot find', async () => {
  for (const [name, expected] of [
    ['$current-allergies', ['AllergyIntolerance/a-drug', 'AllergyIntolerance/a-food']],
    ['current-problems', ['Condition/c-active', 'Condition/c-relapse']],
    ['$current-medications', ['MedicationRequest/mr-active', 'MedicationStatement/ms-active']],
  ] as const) {
    const res = await fhirRequest('GET', `${server.base}/List/$find?patient=fl-patient&name=${encodeURIComponent(name)}`);
    expect({ name, status: res.status }).toEqual({ name, status: 200 });
    const found = res.body as Resource;
    expect(found.resourceType).toBe('List');
    expect(validateResource(found as never).filter((i) => i.severity === 'error')).toEqual([]);
    expect(found.subject).toEqual({ reference: 'Patient/fl-patient' });
    expect(found.entry.map((e: { item: { reference: string } }) => e.item.reference).sort()).toEqual(expected);
  }
  // Every Synthea patient's list holds what its _list search returns.
  for (const patient of patients.slice(0, 3)) {
    const listed = await matches(`Condition?patient=Patient/${patient}&_list=$current-problems&_count=1000`);
    const res = await fhirRequest('POST', `${server.base}/List/$find`, {
      body: { resourceType: 'Parameters', parameter: [{ name: 'patient', valueId: patient }, { name: 'name', valueCode: '$current-problems' }] },
    });
    expect(res.status).toBe(200);
    const references = ((res.body as Resource).entry ?? []).map((e: { item: { reference: string } }) => e.item.reference).sort();
    expect(references).toEqual(listed.map((r) => `Condition/${r.id}`).sort());
    if (references.length === 0) expect((res.body as Resource).emptyReason).toBeDefined();
  }
  expect((await fhirRequest('GET', `${server.base}/List/$find?patient=nobody-here&name=$current-allergies`)).status).toBe(404);
  expect((await fhirRequest('GET', `${server.base}/List/$find?patient=fl-patient&name=$current-wishes`)).status).toBe(404);
  expect((await fhirRequest('GET', `${server.base}/List/$find?patient=fl-patient`)).status).toBe(400);
  const capability = await fhirRequest('GET', `${server.base}/metadata`);
  const list = (capability.body as { rest: { resource: { type: string; operation?: { name: string; definition: string }[] }[] }[] }).rest[0].resource.find((r) => r.type === 'List');
  expect(list?.operation).toContainEqual({ name: 'find', definition: 'http://hl7.org/fhir/OperationDefinition/List-find' });
});
