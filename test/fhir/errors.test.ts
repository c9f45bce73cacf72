import { fhirRequest, type FhirHttpResponse } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ MAX_BODY_BYTES: String(16 * 1024 * 1024) });
});
afterAll(async () => {
  await server.stop();
});

async function expectOutcome(resPromise: Promise<FhirHttpResponse>, status: number): Promise<any> {
  const res = await resPromise;
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
  expect(res.body.resourceType).toBe('OperationOutcome');
  expect(res.body.issue.length).toBeGreaterThan(0);
  return res.body;
}

async function stillServing(): Promise<void> {
  const res = await fhirRequest('GET', `${server.base}/metadata`);
  expect(res.status).toBe(200);
}

test('malformed JSON is 400', async () => {
  await expectOutcome(
    fhirRequest('POST', `${server.base}/Patient`, {
      rawBody: '{"resourceType": "Patient", ',
      headers: { 'Content-Type': 'application/fhir+json' },
    }),
    400
  );
  await stillServing();
});

test('a body whose resourceType differs from the URL, or is unknown, is 400', async () => {
  await expectOutcome(fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Observation' } }), 400);
  await expectOutcome(fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Nonsense' } }), 400);
  await expectOutcome(fhirRequest('POST', `${server.base}/Patient`, { body: { name: [] } }), 400);
  await expectOutcome(fhirRequest('POST', `${server.base}/Patient`, { body: [1, 2, 3] }), 400);
});

test('an unknown resource type or id is 404', async () => {
  await expectOutcome(fhirRequest('GET', `${server.base}/Nonsense/1`), 404);
  await expectOutcome(fhirRequest('GET', `${server.base}/Patient/does-not-exist`), 404);
  await expectOutcome(fhirRequest('POST', `${server.base}/Nonsense`, { body: { resourceType: 'Nonsense' } }), 404);
});

test('an operation the server does not have is a 404 not-supported naming it, at system, type and instance level and in a batch', async () => {
  const parameters = { resourceType: 'Parameters' };
  for (const [method, path] of [
    ['GET', '/$nonsense'],
    ['POST', '/$nonsense'],
    ['GET', '/Patient/$nonsense'],
    ['POST', '/Patient/$nonsense'],
    ['GET', '/Patient/123/$nonsense'],
    ['POST', '/Patient/123/$nonsense'],
  ]) {
    const body = await expectOutcome(fhirRequest(method, `${server.base}${path}`, method === 'POST' ? { body: parameters } : {}), 404);
    expect({ path, code: body.issue[0].code, named: body.issue[0].diagnostics.includes('$nonsense') }).toEqual({ path, code: 'not-supported', named: true });
  }
  const batch = await fhirRequest('POST', server.base, {
    body: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: 'Patient/$nonsense' } }] },
  });
  expect(batch.body.entry[0].response.status).toMatch(/^404/);
  expect(batch.body.entry[0].response.outcome.issue[0].code).toBe('not-supported');
});

test('an invalid id in the URL is 400', async () => {
  await expectOutcome(
    fhirRequest('PUT', `${server.base}/Patient/${'x'.repeat(65)}`, { body: { resourceType: 'Patient', id: 'x'.repeat(65) } }),
    400
  );
});

test('a method the endpoint does not support is 405', async () => {
  const body = await expectOutcome(fhirRequest('DELETE', `${server.base}/metadata`), 405);
  expect(body.issue[0].code).toBe('not-supported');
  await expectOutcome(fhirRequest('POST', `${server.base}/Patient/abc/_history/1`, { body: { resourceType: 'Patient' } }), 405);
});

test('a body larger than the configured limit is 413 and the server keeps serving', async () => {
  const big = JSON.stringify({ resourceType: 'Patient', text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'a'.repeat(20 * 1024 * 1024)}</div>` } });
  await expectOutcome(
    fhirRequest('POST', `${server.base}/Patient`, { rawBody: big, headers: { 'Content-Type': 'application/fhir+json' } }),
    413
  );
  await stillServing();
});

test('JSON nested 10,000 levels deep is 400 and the server keeps serving', async () => {
  const deep = `{"resourceType":"Patient","extension":${'['.repeat(10000)}${']'.repeat(10000)}}`;
  await expectOutcome(
    fhirRequest('POST', `${server.base}/Patient`, { rawBody: deep, headers: { 'Content-Type': 'application/fhir+json' } }),
    400
  );
  const deepObject = `{"resourceType":"Patient","contained":[${'{"a":'.repeat(10000)}1${'}'.repeat(10000)}]}`;
  await expectOutcome(
    fhirRequest('POST', `${server.base}/Patient`, { rawBody: deepObject, headers: { 'Content-Type': 'application/fhir+json' } }),
    400
  );
  await stillServing();
});

test('a wrong content type is 415', async () => {
  await expectOutcome(
    fhirRequest('POST', `${server.base}/Patient`, {
      rawBody: 'resourceType,id\nPatient,1',
      headers: { 'Content-Type': 'text/csv' },
    }),
    415
  );
  await expectOutcome(
    fhirRequest('POST', `${server.base}/Patient`, { rawBody: 'resourceType=Patient', headers: { 'Content-Type': 'text/plain' } }),
    415
  );
});

test('an invalid resource is 400 with the element path in expression', async () => {
  const body = await expectOutcome(
    fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', birthDate: '1970-13-45', foo: 1 } }),
    400
  );
  const expressions = body.issue.flatMap((i: any) => i.expression ?? []);
  expect(expressions.some((e: string) => e.includes('birthDate'))).toBe(true);
  expect(expressions.some((e: string) => e.includes('foo'))).toBe(true);
});

test('every response carries a request id, echoed from X-Request-Id when given', async () => {
  const res = await fhirRequest('GET', `${server.base}/metadata`, { headers: { 'X-Request-Id': 'trace-123' } });
  expect(res.headers.get('x-request-id')).toBe('trace-123');
  const other = await fhirRequest('GET', `${server.base}/Patient/nope`);
  expect(other.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
});
