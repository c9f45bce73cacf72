import { startTestServer, type TestServer } from '../support/test-server';
import {
  basicAuth,
  insertAuthorizationCode,
  jwtClaims,
  pkcePair,
  postForm,
  registerConfidentialClient,
  registerPublicClient,
  registerUser,
  type FormResponse,
  type PublicClient,
} from '../support/oauth';
import { hashToken } from '../../server/auth/secret-hash';
import type { UserAccount } from '../../server/auth/user-store';

let server: TestServer;
let app: PublicClient;
let user: UserAccount;
const scope = 'launch/patient patient/*.rs openid fhirUser offline_access';

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  app = await registerPublicClient(server, scope);
  user = await registerUser(server, 'Patient/pat-1', 'patient');
});
afterAll(() => server.stop());

/** The token response of a fresh authorization (code redeemed with PKCE). */
async function authorize(): Promise<FormResponse> {
  const { verifier, challenge } = pkcePair();
  const code = await insertAuthorizationCode(server, { clientId: app.id, userId: user.id, redirectUri: app.redirectUri, scope, codeChallenge: challenge, patient: 'pat-1' });
  const res = await postForm(server, '/auth/token', { grant_type: 'authorization_code', client_id: app.id, code, redirect_uri: app.redirectUri, code_verifier: verifier });
  expect(res.status).toBe(200);
  return res;
}

function refresh(refreshToken: string, extra: Record<string, string> = {}): Promise<FormResponse> {
  return postForm(server, '/auth/token', { grant_type: 'refresh_token', client_id: app.id, refresh_token: refreshToken, ...extra });
}

test('a refresh token yields a new access token with the same context and a new refresh token', async () => {
  const first = await authorize();
  const res = await refresh(first.json.refresh_token as string);
  expect(res.status).toBe(200);
  expect(res.json).toMatchObject({ token_type: 'Bearer', scope, patient: 'pat-1', refresh_token: expect.any(String) });
  expect(res.json.refresh_token).not.toBe(first.json.refresh_token);
  expect(jwtClaims(res.json.access_token as string)).toMatchObject({ sub: user.id, patient: 'pat-1', fhirUser: 'Patient/pat-1' });
  expect(res.headers.get('cache-control')).toBe('no-store');
});

test('the rotated refresh token works in its turn', async () => {
  const first = await authorize();
  const second = await refresh(first.json.refresh_token as string);
  const third = await refresh(second.json.refresh_token as string);
  expect(third.status).toBe(200);
});

test('reusing a rotated refresh token is invalid_grant and revokes the whole family', async () => {
  const first = await authorize();
  const second = await refresh(first.json.refresh_token as string);
  const replay = await refresh(first.json.refresh_token as string);
  expect(replay.status).toBe(400);
  expect(replay.json.error).toBe('invalid_grant');
  const afterReplay = await refresh(second.json.refresh_token as string);
  expect(afterReplay.status).toBe(400);
  expect(afterReplay.json.error).toBe('invalid_grant');
});

test('asking for a scope beyond the original grant is invalid_scope', async () => {
  const first = await authorize();
  const res = await refresh(first.json.refresh_token as string, { scope: 'patient/*.cruds' });
  expect(res.status).toBe(400);
  expect(res.json.error).toBe('invalid_scope');
  // Refused before use: the refresh token still works.
  expect((await refresh(first.json.refresh_token as string)).status).toBe(200);
});

test('a narrower scope is granted, and the next refresh may ask for the original scope again', async () => {
  const first = await authorize();
  const narrowed = await refresh(first.json.refresh_token as string, { scope: 'patient/Observation.rs offline_access' });
  expect(narrowed.status).toBe(200);
  expect(narrowed.json.scope).toBe('patient/Observation.rs offline_access');
  expect(jwtClaims(narrowed.json.access_token as string).scope).toBe('patient/Observation.rs offline_access');
  const again = await refresh(narrowed.json.refresh_token as string, { scope });
  expect(again.status).toBe(200);
  expect(again.json.scope).toBe(scope);
});

test('another client cannot use the refresh token', async () => {
  const first = await authorize();
  const other = await registerPublicClient(server, scope);
  const res = await postForm(server, '/auth/token', { grant_type: 'refresh_token', client_id: other.id, refresh_token: first.json.refresh_token as string });
  expect(res.status).toBe(400);
  expect(res.json.error).toBe('invalid_grant');
});

test('a confidential client must authenticate to refresh', async () => {
  const client = await registerConfidentialClient(server, scope, { redirectUris: ['https://c.example/cb'] });
  const code = await insertAuthorizationCode(server, { clientId: client.id, userId: user.id, redirectUri: 'https://c.example/cb', scope: 'patient/*.rs offline_access', patient: 'pat-1' });
  const tokens = await postForm(server, '/auth/token', { grant_type: 'authorization_code', code, redirect_uri: 'https://c.example/cb' }, basicAuth(client.id, client.secret));
  const refreshToken = tokens.json.refresh_token as string;
  const unauthenticated = await postForm(server, '/auth/token', { grant_type: 'refresh_token', client_id: client.id, refresh_token: refreshToken });
  expect(unauthenticated.status).toBe(401);
  const res = await postForm(server, '/auth/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, basicAuth(client.id, client.secret));
  expect(res.status).toBe(200);
});

test('an expired refresh token is invalid_grant', async () => {
  const first = await authorize();
  await server.server.knex('auth_refresh_token')
    .where({ token_hash: hashToken(first.json.refresh_token as string) })
    .update({ expires_at: new Date(Date.now() - 1000) });
  const res = await refresh(first.json.refresh_token as string);
  expect(res.status).toBe(400);
  expect(res.json.error).toBe('invalid_grant');
});
