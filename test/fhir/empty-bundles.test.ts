import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * FHIR JSON has no empty arrays (https://hl7.org/fhir/R4/json.html): a Bundle with no
 * entries leaves `entry` out. Each answer is also checked by the server's own validator.
 */
let server: TestServer;
let patientId: string;
beforeAll(async () => {
  server = await startTestServer();
  const res = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', name: [{ family: 'Emptyset' }] } });
  patientId = res.body.id;
});
afterAll(async () => {
  await server.stop();
});

async function expectNoEmptyEntry(method: 'GET' | 'POST', path: string, body?: unknown): Promise<void> {
  const res = await fhirRequest(method, `${server.base}${path}`, body === undefined ? {} : { body });
  expect(res.status).toBe(200);
  expect(res.body.resourceType).toBe('Bundle');
  expect('entry' in res.body).toBe(false);
  const validated = await fhirRequest('POST', `${server.base}/Bundle/$validate`, { body: res.body });
  expect((validated.body.issue ?? []).filter((i: { severity: string }) => i.severity === 'error' || i.severity === 'fatal')).toEqual([]);
}

test('a search without matches answers a searchset Bundle without an entry array', async () => {
  await expectNoEmptyEntry('GET', '/Patient?family=NobodyIsCalledThis');
});

test('_summary=count answers the total without an entry array', async () => {
  const res = await fhirRequest('GET', `${server.base}/Patient?family=Emptyset&_summary=count`);
  expect(res.body.total).toBe(1);
  await expectNoEmptyEntry('GET', '/Patient?family=Emptyset&_summary=count');
});

test('a compartment search without matches and an empty history page have no entry array', async () => {
  await expectNoEmptyEntry('GET', `/Patient/${patientId}/Observation`);
  await expectNoEmptyEntry('GET', '/Patient/_history?_since=2999-01-01T00:00:00Z');
  await expectNoEmptyEntry('GET', `/Patient/${patientId}/_history?_since=2999-01-01T00:00:00Z`);
});

test('an empty batch is answered by a batch-response without an entry array', async () => {
  await expectNoEmptyEntry('POST', '', { resourceType: 'Bundle', type: 'batch' });
});
