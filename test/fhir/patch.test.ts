import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.stop();
});

const PATCH = { 'Content-Type': 'application/json-patch+json' };

async function createPatient(): Promise<any> {
  const res = await fhirRequest('POST', `${server.base}/Patient`, {
    body: { resourceType: 'Patient', active: true, name: [{ family: 'Patchy' }] },
  });
  return res.body;
}

test('a JSON Patch is applied as a new version', async () => {
  const p = await createPatient();
  const res = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify([
      { op: 'replace', path: '/active', value: false },
      { op: 'add', path: '/name/0/given', value: ['Pat'] },
    ]),
    headers: PATCH,
  });
  expect(res.status).toBe(200);
  expect(res.body.active).toBe(false);
  expect(res.body.name[0].given).toEqual(['Pat']);
  expect(res.body.meta.versionId).toBe('2');
  expect(res.headers.get('etag')).toBe('W/"2"');
});

test('a patch whose result is invalid is refused with the element path and nothing changes', async () => {
  const p = await createPatient();
  const res = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify([{ op: 'add', path: '/birthDate', value: 'not-a-date' }]),
    headers: PATCH,
  });
  expect(res.status).toBe(400);
  expect(res.body.resourceType).toBe('OperationOutcome');
  expect(JSON.stringify(res.body.issue.map((i: any) => i.expression))).toContain('birthDate');
  expect((await fhirRequest('GET', `${server.base}/Patient/${p.id}`)).body.meta.versionId).toBe('1');
});

test('a failing JSON Patch test operation is 422, a malformed patch is 400', async () => {
  const p = await createPatient();
  const failedTest = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify([{ op: 'test', path: '/active', value: false }]),
    headers: PATCH,
  });
  expect(failedTest.status).toBe(422);
  const malformed = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify([{ op: 'frobnicate', path: '/active' }]),
    headers: PATCH,
  });
  expect(malformed.status).toBe(400);
  const notArray = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify({ op: 'replace', path: '/active', value: false }),
    headers: PATCH,
  });
  expect(notArray.status).toBe(400);
});

test('a patch may not change the id or the resourceType', async () => {
  const p = await createPatient();
  const res = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify([{ op: 'replace', path: '/id', value: 'other' }]),
    headers: PATCH,
  });
  expect(res.status).toBe(422);
});

test('a patch with a stale If-Match is 412', async () => {
  const p = await createPatient();
  await fhirRequest('PUT', `${server.base}/Patient/${p.id}`, { body: p });
  const res = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify([{ op: 'replace', path: '/active', value: false }]),
    headers: { ...PATCH, 'If-Match': 'W/"1"' },
  });
  expect(res.status).toBe(412);
});

test('PATCH with a FHIR JSON content type is 415, on a missing resource 404', async () => {
  const p = await createPatient();
  const wrongType = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify([{ op: 'replace', path: '/active', value: false }]),
    headers: { 'Content-Type': 'application/fhir+json' },
  });
  expect(wrongType.status).toBe(415);
  const missing = await fhirRequest('PATCH', `${server.base}/Patient/does-not-exist`, {
    rawBody: JSON.stringify([{ op: 'replace', path: '/active', value: false }]),
    headers: PATCH,
  });
  expect(missing.status).toBe(404);
});
