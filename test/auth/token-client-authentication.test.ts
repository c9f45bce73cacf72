import http from 'node:http';
import { startTestServer, type TestServer } from '../support/test-server';
import {
  assertionForm,
  basicAuth,
  makeKeyPair,
  postForm,
  registerBackendClient,
  registerConfidentialClient,
  registerPublicClient,
  type BackendClient,
  type ConfidentialClient,
} from '../support/oauth';
import { saveClient } from '../../server/auth/client-store';

let server: TestServer;
let confidential: ConfidentialClient;
let backend: BackendClient;
const scope = 'system/*.read';

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  confidential = await registerConfidentialClient(server, scope);
  backend = await registerBackendClient(server, scope, 'ES384');
});
afterAll(() => server.stop());

const grant = { grant_type: 'client_credentials', scope };

describe('client_secret_basic and client_secret_post', () => {
  test('a client with the right secret in HTTP Basic gets a token', async () => {
    const res = await postForm(server, '/auth/token', grant, basicAuth(confidential.id, confidential.secret));
    expect(res.status).toBe(200);
    expect(res.json.token_type).toBe('Bearer');
  });

  test('a client with the right secret in the form gets a token', async () => {
    const res = await postForm(server, '/auth/token', { ...grant, client_id: confidential.id, client_secret: confidential.secret });
    expect(res.status).toBe(200);
  });

  test('HTTP Basic credentials are form-urldecoded (RFC 6749 2.3.1)', async () => {
    const client = await registerConfidentialClient(server, scope, { id: 'id with:colon+plus é' });
    const res = await postForm(server, '/auth/token', grant, basicAuth(client.id, client.secret));
    expect(res.status).toBe(200);
  });

  test('a wrong secret is 401 invalid_client with a Basic challenge', async () => {
    const res = await postForm(server, '/auth/token', grant, basicAuth(confidential.id, 'wrong'));
    expect(res.status).toBe(401);
    expect(res.json.error).toBe('invalid_client');
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic/);
  });

  test('an unknown client is 401 invalid_client', async () => {
    const res = await postForm(server, '/auth/token', { ...grant, client_id: 'nobody', client_secret: 'x' });
    expect(res.status).toBe(401);
    expect(res.json.error).toBe('invalid_client');
  });

  test('a confidential client that sends only its client_id is 401 invalid_client', async () => {
    const res = await postForm(server, '/auth/token', { ...grant, client_id: confidential.id });
    expect(res.status).toBe(401);
    expect(res.json.error).toBe('invalid_client');
  });

  test('a request without any client is 401 invalid_client', async () => {
    const res = await postForm(server, '/auth/token', grant);
    expect(res.status).toBe(401);
    expect(res.json.error).toBe('invalid_client');
  });

  test('two authentication methods at once are refused', async () => {
    const res = await postForm(server, '/auth/token', { ...grant, client_secret: confidential.secret }, basicAuth(confidential.id, confidential.secret));
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('invalid_request');
  });

  test('errors are not cached', async () => {
    const res = await postForm(server, '/auth/token', grant, basicAuth(confidential.id, 'wrong'));
    expect(res.headers.get('cache-control')).toBe('no-store');
  });
});

describe('private_key_jwt (SMART Backend Services)', () => {
  test('an ES384 client assertion authenticates', async () => {
    const res = await postForm(server, '/auth/token', { ...grant, ...(await assertionForm(server, backend)) });
    expect(res.status).toBe(200);
    expect(res.json.scope).toBe(scope);
  });

  test('an RS384 client assertion authenticates', async () => {
    const rsa = await registerBackendClient(server, scope, 'RS384');
    const res = await postForm(server, '/auth/token', { ...grant, ...(await assertionForm(server, rsa)) });
    expect(res.status).toBe(200);
  });

  test('keys are also fetched from the client’s JWKS URL', async () => {
    const key = await makeKeyPair('ES384');
    const client = { id: `jwks-url-${key.kid}`, key };
    const keysServer = http.createServer((_req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ keys: [key.publicJwk] }));
    });
    await new Promise<void>((resolve) => keysServer.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = keysServer.address() as { port: number };
      await saveClient(server.server.knex, { id: client.id, scope, jwksUrl: `http://127.0.0.1:${port}/jwks.json` });
      const res = await postForm(server, '/auth/token', { ...grant, ...(await assertionForm(server, client)) });
      expect(res.status).toBe(200);
    } finally {
      keysServer.closeAllConnections();
      await new Promise((resolve) => keysServer.close(resolve));
    }
  });

  test('an assertion signed with a key the client did not register is 401', async () => {
    const other = await makeKeyPair('ES384');
    const res = await postForm(server, '/auth/token', { ...grant, ...(await assertionForm(server, backend, { key: { ...other, kid: backend.key.kid } })) });
    expect(res.status).toBe(401);
    expect(res.json.error).toBe('invalid_client');
  });

  test('an assertion signed with RS256 is refused: only RS384 and ES384 are accepted', async () => {
    const rs256 = await registerBackendClient(server, scope, 'RS256');
    const res = await postForm(server, '/auth/token', { ...grant, ...(await assertionForm(server, rs256)) });
    expect(res.status).toBe(401);
    expect(res.json.error).toBe('invalid_client');
  });

  test('an assertion that expires more than five minutes ahead is refused', async () => {
    const res = await postForm(server, '/auth/token', { ...grant, ...(await assertionForm(server, backend, { expiresInSeconds: 600 })) });
    expect(res.status).toBe(401);
    expect(res.json.error_description).toMatch(/5 minutes/);
  });

  test('an expired assertion is refused', async () => {
    const res = await postForm(server, '/auth/token', { ...grant, ...(await assertionForm(server, backend, { expiresInSeconds: -60 })) });
    expect(res.status).toBe(401);
  });

  test('an assertion whose jti was already used is refused', async () => {
    const jti = `jti-${Date.now()}`;
    const first = await postForm(server, '/auth/token', { ...grant, ...(await assertionForm(server, backend, { jti })) });
    expect(first.status).toBe(200);
    const second = await postForm(server, '/auth/token', { ...grant, ...(await assertionForm(server, backend, { jti })) });
    expect(second.status).toBe(401);
    expect(second.json.error_description).toMatch(/jti/);
  });

  test('an assertion for another audience is refused', async () => {
    const res = await postForm(server, '/auth/token', { ...grant, ...(await assertionForm(server, backend, { aud: 'https://elsewhere.example/token' })) });
    expect(res.status).toBe(401);
  });

  test('an assertion whose iss is not the client is refused', async () => {
    const res = await postForm(server, '/auth/token', { ...grant, ...(await assertionForm(server, backend, { iss: confidential.id })) });
    expect(res.status).toBe(401);
  });

  test('an assertion with the wrong client_assertion_type is refused', async () => {
    const form = await assertionForm(server, backend);
    const res = await postForm(server, '/auth/token', { ...grant, ...form, client_assertion_type: 'urn:example:other' });
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('invalid_request');
  });
});

describe('public clients', () => {
  test('a public client cannot use client_credentials', async () => {
    const app = await registerPublicClient(server, 'system/*.read');
    const res = await postForm(server, '/auth/token', { ...grant, client_id: app.id });
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('unauthorized_client');
  });
});
