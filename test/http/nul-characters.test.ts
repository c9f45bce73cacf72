import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/** U+0000 cannot be held by any FHIR value nor by PostgreSQL: wherever a request carries one, the answer is a 400, never a 500. */
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
});

const json = { 'Content-Type': 'application/fhir+json' };

test('NUL in a search value, an id or an operation parameter of the URL is a 400 OperationOutcome', async () => {
  for (const path of ['Patient?name=a%00b', 'Patient?identifier=urn:x|a%00b', 'Patient?_id=a%00b', 'Patient/a%00b', 'Patient?_tag=a%00', 'ValueSet/$expand?url=a%00b', '?_type=Patient&name=%00']) {
    const res = await fhirRequest('GET', `${server.base}/${path}`);
    expect({ path, status: res.status, type: res.body?.resourceType }).toEqual({ path, status: 400, type: 'OperationOutcome' });
  }
});

test('NUL in a form, a resource, or a transaction entry of the body is a 400', async () => {
  const form = await fhirRequest('POST', `${server.base}/Patient/_search`, { rawBody: 'name=a%00', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  expect(form.status).toBe(400);
  const resource = await fhirRequest('POST', `${server.base}/Patient`, { rawBody: '{"resourceType":"Patient","name":[{"family":"x\\u0000"}]}', headers: json });
  expect(resource.status).toBe(400);
  const entry = { request: { method: 'GET', url: 'Patient?name=a\u0000' } };
  expect((await fhirRequest('POST', server.base, { body: { resourceType: 'Bundle', type: 'batch', entry: [entry] } })).status).toBe(400);
  // An escaped backslash followed by the text u0000 is just text.
  const text = await fhirRequest('POST', `${server.base}/Patient`, { rawBody: '{"resourceType":"Patient","name":[{"family":"x\\\\u0000"}]}', headers: json });
  expect(text.status).toBe(201);
  expect(text.body.name[0].family).toBe('x\\u0000');
});

test('an unpaired surrogate in a value is refused by validation at its element', async () => {
  const res = await fhirRequest('POST', `${server.base}/Patient`, { rawBody: '{"resourceType":"Patient","name":[{"family":"x\\ud800"}]}', headers: json });
  expect(res.status).toBe(400);
  expect(res.body.issue.map((i: any) => i.expression?.[0])).toEqual(['Patient.name[0].family']);
});

test('NUL in an OAuth request is an invalid_request', async () => {
  const res = await fhirRequest('POST', server.base.replace(/\/fhir$/, '/auth/token'), {
    rawBody: 'grant_type=client_credentials&client_id=a%00',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  expect(res.status).toBe(400);
  expect(res.body.error).toBe('invalid_request');
});

test('malformed resources of the types the server reads before writing (SearchParameter, Subscription) are 400s', async () => {
  const searchParameter = { resourceType: 'SearchParameter', url: 'http://example.org/sp', name: 'x', status: 'active', description: 'x', code: 'x', base: ['Patient'], type: 'token', expression: 5 };
  expect((await fhirRequest('POST', `${server.base}/SearchParameter`, { body: searchParameter })).status).toBe(400);
  const subscription = { resourceType: 'Subscription', status: 'requested', reason: 'x', criteria: 'Patient?name=x', channel: { type: 'rest-hook', endpoint: 'http://example.org/hook', payload: 5 } };
  expect((await fhirRequest('POST', `${server.base}/Subscription`, { body: subscription })).status).toBe(400);
  const transaction = { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: subscription, request: { method: 'POST', url: 'Subscription' } }] };
  expect((await fhirRequest('POST', server.base, { body: transaction })).status).toBe(400);
});
