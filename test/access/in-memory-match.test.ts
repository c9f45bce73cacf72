import { patientCompartmentFilter } from '../../server/search/compartment-definitions';
import { matchesInMemory } from '../../server/search/match-filter-in-memory';
import { fhirRequest } from '../support/fhir-client';
import { informationFiles, readSyntheaBundle, smallestPatientFiles } from '../support/synthea-bundles';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * Access checks on single resources decide the patient compartment from content
 * (match-filter-in-memory.ts) instead of asking PostgreSQL; both must always agree.
 * The oracle: compartment search in SQL over two real Synthea patients.
 */
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
  for (const file of [...informationFiles(), ...smallestPatientFiles(2)]) {
    const res = await fhirRequest('POST', server.base, { body: readSyntheaBundle(file) });
    expect(res.status).toBe(200);
  }
}, 120000);

afterAll(async () => {
  await server?.stop();
});

it('decides patient compartment membership from content exactly as the SQL search does, for every resource of two Synthea patients', async () => {
  const patients = (await fhirRequest('GET', `${server.base}/Patient?_count=10`)).body.entry.map((e: any) => e.resource.id as string);
  expect(patients).toHaveLength(2);
  const types = ['Patient', 'Encounter', 'Observation', 'Condition', 'Procedure', 'MedicationRequest', 'Immunization', 'Claim', 'ExplanationOfBenefit', 'DiagnosticReport', 'CareTeam', 'CarePlan', 'Provenance', 'Practitioner', 'Organization'];
  let compared = 0;
  for (const type of types) {
    const all = (await fhirRequest('GET', `${server.base}/${type}?_count=1000`)).body.entry?.map((e: any) => e.resource) ?? [];
    for (const patient of patients) {
      const filter = patientCompartmentFilter(type, patient);
      if (!filter) continue;
      const inSql = new Set(((await fhirRequest('GET', `${server.base}/Patient/${patient}/${type}?_count=1000&_elements=id`)).body.entry ?? []).map((e: any) => e.resource.id));
      const inMemory = new Set(all.filter((r: any) => matchesInMemory(r, filter)).map((r: any) => r.id));
      expect([...inMemory].sort()).toEqual([...inSql].sort());
      compared += all.length;
    }
  }
  expect(compared).toBeGreaterThan(300);
});
