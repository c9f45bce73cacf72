import { startTestServer, type TestServer } from '../support/test-server';
import { clientCredentials, fhirGet, jwtClaims, jwtHeader, registerBackendClient, registerConfidentialClient, type ConfidentialClient } from '../support/oauth';

let server: TestServer;
let reader: ConfidentialClient;

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  reader = await registerConfidentialClient(server, 'system/*.read launch/patient openid');
});
afterAll(() => server.stop());

test('the token response has a Bearer token, expires_in, the granted scope and no refresh token, and is not cached', async () => {
  const res = await clientCredentials(server, reader, 'system/*.read');
  expect(res.status).toBe(200);
  expect(res.json).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 900, scope: 'system/*.read' });
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(res.headers.get('pragma')).toBe('no-cache');
});

test('the access token is an RS256 at+jwt for the FHIR base, with the client as subject', async () => {
  const res = await clientCredentials(server, reader, 'system/*.read');
  const token = res.json.access_token as string;
  expect(jwtHeader(token)).toMatchObject({ alg: 'RS256', typ: 'at+jwt', kid: expect.any(String) });
  const claims = jwtClaims(token);
  expect(claims).toMatchObject({ iss: server.base.replace(/\/fhir$/, ''), aud: server.base, sub: reader.id, client_id: reader.id, scope: 'system/*.read' });
  expect((claims.exp as number) - (claims.iat as number)).toBe(900);
  expect(claims.jti).toEqual(expect.any(String));
});

test('a system/*.read token can read', async () => {
  const token = (await clientCredentials(server, reader, 'system/*.read')).json.access_token as string;
  const res = await fhirGet(server, 'Patient', token);
  expect(res.status).toBe(200);
});

test('a system/*.read token cannot write', async () => {
  const token = (await clientCredentials(server, reader, 'system/*.read')).json.access_token as string;
  const res = await fetch(`${server.base}/Patient`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Denied' }] }),
  });
  expect(res.status).toBe(403);
});

test('a request for more than the client is registered for is narrowed to what it may have', async () => {
  const res = await clientCredentials(server, reader, 'system/Observation.read system/Patient.write');
  expect(res.status).toBe(200);
  expect(res.json.scope).toBe('system/Observation.read');
});

test('user, patient and launch scopes are not granted to a backend client', async () => {
  const client = await registerConfidentialClient(server, 'system/*.read user/*.read patient/*.read openid');
  const res = await clientCredentials(server, client, 'system/*.read user/*.read patient/*.read openid');
  expect(res.json.scope).toBe('system/*.read');
});

test('a request without scope is invalid_scope', async () => {
  const res = await clientCredentials(server, reader, '');
  expect(res.status).toBe(400);
  expect(res.json.error).toBe('invalid_scope');
});

test('a request with nothing grantable is invalid_scope', async () => {
  const res = await clientCredentials(server, reader, 'system/*.write');
  expect(res.status).toBe(400);
  expect(res.json.error).toBe('invalid_scope');
});

test('a backend services client (private_key_jwt) gets a token that reads', async () => {
  const backend = await registerBackendClient(server, 'system/*.rs');
  const res = await clientCredentials(server, backend, 'system/Patient.rs');
  expect(res.status).toBe(200);
  expect(res.json.scope).toBe('system/Patient.rs');
  expect((await fhirGet(server, 'Patient', res.json.access_token as string)).status).toBe(200);
});

test('an unknown grant_type is unsupported_grant_type', async () => {
  const res = await fetch(`${server.base.replace(/\/fhir$/, '')}/auth/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=password&username=a&password=b',
  });
  expect(res.status).toBe(400);
  expect((await res.json()).error).toBe('unsupported_grant_type');
});
