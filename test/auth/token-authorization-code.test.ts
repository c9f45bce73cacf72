import { jwtVerify, createRemoteJWKSet } from 'jose';
import { startTestServer, type TestServer } from '../support/test-server';
import {
  basicAuth,
  fhirGet,
  insertAuthorizationCode,
  issuerOf,
  jwtClaims,
  pkcePair,
  postForm,
  registerConfidentialClient,
  registerPublicClient,
  registerUser,
  type CodeRow,
  type PublicClient,
} from '../support/oauth';
import type { UserAccount } from '../../server/auth/user-store';
import { mintToken } from '../support/mint-token';

let server: TestServer;
let app: PublicClient;
let user: UserAccount;
const scope = 'launch/patient patient/*.rs openid fhirUser offline_access';

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  app = await registerPublicClient(server, scope);
  user = await registerUser(server, 'Practitioner/p1', 'practitioner');
});
afterAll(() => server.stop());

/** A code for the public app with PKCE, as /auth/authorize would have written it. */
async function codeWithPkce(overrides: Partial<CodeRow> = {}): Promise<{ code: string; verifier: string }> {
  const { verifier, challenge } = pkcePair();
  const code = await insertAuthorizationCode(server, {
    clientId: app.id,
    userId: user.id,
    redirectUri: app.redirectUri,
    scope,
    codeChallenge: challenge,
    patient: 'pat-1',
    needPatientBanner: true,
    nonce: 'n-0S6_WzA2Mj',
    ...overrides,
  });
  return { code, verifier };
}

function redeem(form: Record<string, string>, headers: Record<string, string> = {}) {
  return postForm(server, '/auth/token', { grant_type: 'authorization_code', client_id: app.id, redirect_uri: app.redirectUri, ...form }, headers);
}

test('a code with the right verifier yields access, refresh and id tokens with the launch context', async () => {
  const { code, verifier } = await codeWithPkce();
  const res = await redeem({ code, code_verifier: verifier });
  expect(res.status).toBe(200);
  expect(res.json).toMatchObject({
    token_type: 'Bearer',
    expires_in: 900,
    scope,
    patient: 'pat-1',
    need_patient_banner: true,
    smart_style_url: `${issuerOf(server)}/auth/smart-style.json`,
    refresh_token: expect.any(String),
    id_token: expect.any(String),
  });
  expect(jwtClaims(res.json.access_token as string)).toMatchObject({ sub: user.id, client_id: app.id, patient: 'pat-1', fhirUser: 'Practitioner/p1', role: 'practitioner' });
  expect(res.headers.get('cache-control')).toBe('no-store');
});

test('the id_token is signed with a key of the JWKS and names the user by an absolute fhirUser URL', async () => {
  const { code, verifier } = await codeWithPkce();
  const res = await redeem({ code, code_verifier: verifier });
  const keys = createRemoteJWKSet(new URL(`${issuerOf(server)}/auth/jwks`));
  const { payload, protectedHeader } = await jwtVerify(res.json.id_token as string, keys, { issuer: issuerOf(server), audience: app.id });
  expect(protectedHeader.alg).toBe('RS256');
  expect(payload).toMatchObject({ sub: user.id, nonce: 'n-0S6_WzA2Mj', fhirUser: `${server.base}/Practitioner/p1` });
});

test("with openid profile the id_token carries OIDC's profile claims from the user's FHIR resource; without profile, none", async () => {
  const system = await mintToken(server, { scope: 'system/*.*' });
  const practitioner = { resourceType: 'Practitioner', id: 'house', name: [{ use: 'official', prefix: ['Dr.'], given: ['Gregory', 'M.'], family: 'House' }], gender: 'male', birthDate: '1959-05-15' };
  const put = await fetch(`${server.base}/Practitioner/house`, { method: 'PUT', headers: { Authorization: `Bearer ${system}`, 'Content-Type': 'application/fhir+json' }, body: JSON.stringify(practitioner) });
  expect(put.status).toBe(201);
  const lastUpdated = ((await put.json()) as { meta: { lastUpdated: string } }).meta.lastUpdated;
  const house = await registerUser(server, 'Practitioner/house', 'practitioner');
  const keys = createRemoteJWKSet(new URL(`${issuerOf(server)}/auth/jwks`));
  const claimsFor = async (account: UserAccount, granted: string): Promise<Record<string, unknown>> => {
    const { code, verifier } = await codeWithPkce({ scope: granted, userId: account.id });
    const res = await redeem({ code, code_verifier: verifier });
    return (await jwtVerify(res.json.id_token as string, keys, { issuer: issuerOf(server), audience: app.id })).payload;
  };
  expect(await claimsFor(house, 'openid profile fhirUser')).toMatchObject({
    sub: house.id,
    fhirUser: `${server.base}/Practitioner/house`,
    name: 'Dr. Gregory M. House',
    given_name: 'Gregory',
    middle_name: 'M.',
    family_name: 'House',
    gender: 'male',
    birthdate: '1959-05-15',
    preferred_username: house.username,
    updated_at: Math.floor(new Date(lastUpdated).getTime() / 1000),
  });
  const withoutProfile = await claimsFor(house, 'openid fhirUser');
  for (const claim of ['name', 'given_name', 'family_name', 'birthdate', 'preferred_username']) expect(withoutProfile).not.toHaveProperty(claim);
  // A user whose resource does not exist: the login name alone.
  const ghost = await claimsFor(user, 'openid profile');
  expect(ghost.preferred_username).toBe(user.username);
  expect(ghost).not.toHaveProperty('name');
});

test('the access token of a code works on the FHIR API', async () => {
  const { code, verifier } = await codeWithPkce();
  const res = await redeem({ code, code_verifier: verifier });
  expect((await fhirGet(server, 'metadata', res.json.access_token as string)).status).toBe(200);
  expect((await fhirGet(server, 'Patient/pat-1', res.json.access_token as string)).status).not.toBe(401);
});

test('without offline_access or online_access there is no refresh token, and without openid no id_token', async () => {
  const { code, verifier } = await codeWithPkce({ scope: 'launch/patient patient/*.rs' });
  const res = await redeem({ code, code_verifier: verifier });
  expect(res.status).toBe(200);
  expect(res.json.refresh_token).toBeUndefined();
  expect(res.json.id_token).toBeUndefined();
});

test('a wrong code_verifier is invalid_grant', async () => {
  const { code } = await codeWithPkce();
  const res = await redeem({ code, code_verifier: pkcePair().verifier });
  expect(res.status).toBe(400);
  expect(res.json.error).toBe('invalid_grant');
});

test('a missing code_verifier is invalid_grant', async () => {
  const { code } = await codeWithPkce();
  const res = await redeem({ code });
  expect(res.status).toBe(400);
  expect(res.json.error).toBe('invalid_grant');
});

test('a public client whose authorization request had no PKCE cannot redeem the code', async () => {
  const code = await insertAuthorizationCode(server, { clientId: app.id, userId: user.id, redirectUri: app.redirectUri, scope });
  const res = await redeem({ code });
  expect(res.status).toBe(400);
  expect(res.json.error).toBe('invalid_grant');
});

test('a plain code_challenge is refused', async () => {
  const verifier = pkcePair().verifier;
  const code = await insertAuthorizationCode(server, { clientId: app.id, userId: user.id, redirectUri: app.redirectUri, scope, codeChallenge: verifier, codeChallengeMethod: 'plain' });
  const res = await redeem({ code, code_verifier: verifier });
  expect(res.status).toBe(400);
  expect(res.json.error).toBe('invalid_grant');
});

test('a wrong redirect_uri is invalid_grant', async () => {
  const { code, verifier } = await codeWithPkce();
  const res = await redeem({ code, code_verifier: verifier, redirect_uri: 'https://app.example/other' });
  expect(res.status).toBe(400);
  expect(res.json.error).toBe('invalid_grant');
});

test('an expired code is invalid_grant', async () => {
  const { code, verifier } = await codeWithPkce({ expiresInSeconds: -1 });
  const res = await redeem({ code, code_verifier: verifier });
  expect(res.status).toBe(400);
  expect(res.json.error).toBe('invalid_grant');
});

test('an unknown code is invalid_grant', async () => {
  const res = await redeem({ code: 'not-a-code', code_verifier: pkcePair().verifier });
  expect(res.status).toBe(400);
  expect(res.json.error).toBe('invalid_grant');
});

test('another client cannot redeem the code', async () => {
  const other = await registerPublicClient(server, scope, app.redirectUri);
  const { code, verifier } = await codeWithPkce();
  const res = await redeem({ code, code_verifier: verifier, client_id: other.id });
  expect(res.status).toBe(400);
  expect(res.json.error).toBe('invalid_grant');
});

test('a reused code is invalid_grant and revokes the refresh token and the access token it yielded', async () => {
  const { code, verifier } = await codeWithPkce();
  const first = await redeem({ code, code_verifier: verifier });
  expect(first.status).toBe(200);
  expect((await fhirGet(server, 'Patient/pat-1', first.json.access_token as string)).status).not.toBe(401);
  const second = await redeem({ code, code_verifier: verifier });
  expect(second.status).toBe(400);
  expect(second.json.error).toBe('invalid_grant');

  const refreshed = await postForm(server, '/auth/token', { grant_type: 'refresh_token', client_id: app.id, refresh_token: first.json.refresh_token as string });
  expect(refreshed.status).toBe(400);
  expect(refreshed.json.error).toBe('invalid_grant');
  expect((await fhirGet(server, 'Patient/pat-1', first.json.access_token as string)).status).toBe(401);
});

test('a confidential client authenticates to redeem its code, and may do so without PKCE', async () => {
  const client = await registerConfidentialClient(server, scope, { redirectUris: ['https://ehr-app.example/cb'] });
  const code = await insertAuthorizationCode(server, { clientId: client.id, userId: user.id, redirectUri: 'https://ehr-app.example/cb', scope: 'launch/patient patient/*.rs', patient: 'pat-2' });
  const unauthenticated = await postForm(server, '/auth/token', { grant_type: 'authorization_code', client_id: client.id, code, redirect_uri: 'https://ehr-app.example/cb' });
  expect(unauthenticated.status).toBe(401);
  const res = await postForm(server, '/auth/token', { grant_type: 'authorization_code', code, redirect_uri: 'https://ehr-app.example/cb' }, basicAuth(client.id, client.secret));
  expect(res.status).toBe(200);
  expect(res.json.patient).toBe('pat-2');
});
