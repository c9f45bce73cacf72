import type { CapabilityStatement } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../support/test-server';
import { issuerOf } from '../support/oauth';

let server: TestServer;
let issuer: string;

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  issuer = issuerOf(server);
});
afterAll(() => server.stop());

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const res = await fetch(url, { headers });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

test('SMART configuration names the endpoints, methods and capabilities that work', async () => {
  const { status, json } = await getJson(`${issuer}/.well-known/smart-configuration`);
  expect(status).toBe(200);
  expect(json).toMatchObject({
    issuer,
    jwks_uri: `${issuer}/auth/jwks`,
    authorization_endpoint: `${issuer}/auth/authorize`,
    token_endpoint: `${issuer}/auth/token`,
    introspection_endpoint: `${issuer}/auth/introspect`,
    revocation_endpoint: `${issuer}/auth/revoke`,
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
  });
  expect(json.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token', 'client_credentials']));
  expect(json.scopes_supported).toEqual(expect.arrayContaining(['openid', 'fhirUser', 'launch', 'launch/patient', 'offline_access', 'system/*.rs']));
  expect(json.capabilities).toEqual(
    expect.arrayContaining(['launch-ehr', 'launch-standalone', 'client-public', 'client-confidential-symmetric', 'client-confidential-asymmetric', 'sso-openid-connect', 'context-passthrough-banner', 'context-passthrough-style', 'permission-v1', 'permission-v2'])
  );
  expect(json.registration_endpoint).toBeUndefined();
});

test('the SMART configuration under the FHIR base is the same document and needs no token', async () => {
  const root = await getJson(`${issuer}/.well-known/smart-configuration`);
  const fhir = await getJson(`${server.base}/.well-known/smart-configuration`);
  expect(fhir.status).toBe(200);
  expect(fhir.json).toEqual(root.json);
});

test('browser apps on other origins may read the SMART configuration (CORS)', async () => {
  const res = await getJson(`${server.base}/.well-known/smart-configuration`, { Origin: 'https://app.example' });
  expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
});

test('the login pages are not offered to other origins (no CORS)', async () => {
  const res = await fetch(`${issuer}/auth/authorize`, { headers: { Origin: 'https://app.example' } });
  expect(res.headers.get('access-control-allow-origin')).toBeNull();
});

test('OpenID configuration names the issuer, keys, RS256 id tokens and the fhirUser claim', async () => {
  const { status, json } = await getJson(`${issuer}/.well-known/openid-configuration`);
  expect(status).toBe(200);
  expect(json).toMatchObject({
    issuer,
    authorization_endpoint: `${issuer}/auth/authorize`,
    token_endpoint: `${issuer}/auth/token`,
    jwks_uri: `${issuer}/auth/jwks`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
  });
  expect(json.claims_supported).toContain('fhirUser');
});

test('the JWKS holds public RS256 signing keys only', async () => {
  const { status, json } = await getJson(`${issuer}/auth/jwks`);
  expect(status).toBe(200);
  const keys = json.keys as Record<string, unknown>[];
  expect(keys.length).toBeGreaterThan(0);
  for (const key of keys) {
    expect(key).toEqual({ kty: 'RSA', n: expect.any(String), e: 'AQAB', kid: expect.any(String), alg: 'RS256', use: 'sig' });
  }
});

test('the smart_style_url document is served, also to browser apps on other origins', async () => {
  const { status, json, headers } = await getJson(`${issuer}/auth/smart-style.json`, { Origin: 'https://app.example' });
  expect(status).toBe(200);
  expect(headers.get('access-control-allow-origin')).toBe('https://app.example');
  expect(json.color_background).toEqual(expect.any(String));
});

test('the CapabilityStatement declares SMART-on-FHIR security with the OAuth endpoints', async () => {
  const { status, json } = await getJson(`${server.base}/metadata`);
  expect(status).toBe(200);
  const security = (json as unknown as CapabilityStatement).rest?.[0].security;
  expect(security?.service?.[0].coding?.[0]).toMatchObject({ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' });
  const uris = security?.extension?.find((e) => e.url === 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris');
  expect(Object.fromEntries((uris?.extension ?? []).map((e) => [e.url, e.valueUri]))).toEqual({
    authorize: `${issuer}/auth/authorize`,
    token: `${issuer}/auth/token`,
    introspect: `${issuer}/auth/introspect`,
    revoke: `${issuer}/auth/revoke`,
  });
});
