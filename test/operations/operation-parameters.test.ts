import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/** An operation's Parameters body is checked against R4 before the operation reads it: a malformed one is a 400 naming the element, never a 500. */
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
  expect((await fhirRequest('PUT', `${server.base}/Patient/op-params`, { body: { resourceType: 'Patient', id: 'op-params' } })).status).toBe(201);
});
afterAll(async () => {
  await server?.stop();
});

const post = (path: string, body: unknown) => fhirRequest('POST', `${server.base}/${path}`, { body });

test('a Parameters whose parameter is not an array, or whose values have the wrong type, is a 400 at the element', async () => {
  const cases: [string, unknown, string][] = [
    ['Claim/$submit', { resourceType: 'Parameters', parameter: 'x' }, 'Parameters.parameter'],
    ['Patient/op-params/$meta-add', { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: 'x' }] }, 'Parameters.parameter[0].valueMeta'],
    ['ValueSet/$expand', { resourceType: 'Parameters', parameter: [{ name: 'url', valueUri: 'http://hl7.org/fhir/ValueSet/administrative-gender' }, { name: 'count', valueInteger: 'ten' }] }, 'Parameters.parameter[1].valueInteger'],
    ['Patient/$match', { resourceType: 'Parameters', parameter: [{ valueString: 'no name' }] }, 'Parameters.parameter[0].name'],
  ];
  for (const [path, body, at] of cases) {
    const res = await post(path, body);
    expect({ path, status: res.status }).toEqual({ path, status: 400 });
    expect({ path, at: res.body.issue.map((i: any) => i.expression?.[0]) }).toEqual({ path, at: expect.arrayContaining([at]) });
  }
});

test('the resources a Parameters carries are left to the operation: $validate still answers 200 with their issues', async () => {
  const res = await post('Patient/$validate', { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: { resourceType: 'Patient', gender: 'sometimes' } }] });
  expect(res.status).toBe(200);
  expect(res.body.issue.some((i: any) => i.severity === 'error' && i.expression?.[0] === 'Patient.gender')).toBe(true);
  // A Parameters resource that is itself the subject of $validate is reported on, not refused.
  const itself = await post('Parameters/$validate', { resourceType: 'Parameters', parameter: 'x' });
  expect(itself.status).toBe(200);
  expect(itself.body.issue.some((i: any) => i.severity === 'error')).toBe(true);
});
