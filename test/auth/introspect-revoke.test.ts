import { execFile } from 'node:child_process';
import path from 'node:path';
import { startTestServer, type TestServer } from '../support/test-server';
import {
  assertionForm,
  basicAuth,
  clientCredentials,
  fhirGet,
  insertAuthorizationCode,
  issuerOf,
  pkcePair,
  postForm,
  registerBackendClient,
  registerConfidentialClient,
  registerPublicClient,
  registerUser,
  type ConfidentialClient,
  type FormResponse,
  type PublicClient,
} from '../support/oauth';
import type { UserAccount } from '../../server/auth/user-store';

let server: TestServer;
let resourceServer: ConfidentialClient;
let app: PublicClient;
let user: UserAccount;
const appScope = 'launch/patient patient/*.rs openid fhirUser offline_access';

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  resourceServer = await registerConfidentialClient(server, 'system/*.read');
  app = await registerPublicClient(server, appScope);
  user = await registerUser(server, 'Patient/pat-1', 'patient');
});
afterAll(() => server.stop());

async function appTokens(who: UserAccount = user): Promise<FormResponse> {
  const { verifier, challenge } = pkcePair();
  const code = await insertAuthorizationCode(server, { clientId: app.id, userId: who.id, redirectUri: app.redirectUri, scope: appScope, codeChallenge: challenge, patient: 'pat-1' });
  const res = await postForm(server, '/auth/token', { grant_type: 'authorization_code', client_id: app.id, code, redirect_uri: app.redirectUri, code_verifier: verifier });
  expect(res.status).toBe(200);
  return res;
}

function introspect(token: string, auth: ConfidentialClient = resourceServer, extra: Record<string, string> = {}): Promise<FormResponse> {
  return postForm(server, '/auth/introspect', { token, ...extra }, basicAuth(auth.id, auth.secret));
}

describe('introspection', () => {
  test('an active access token is described with its scope, client, subject, times and context', async () => {
    const { access_token: token } = (await appTokens()).json as { access_token: string };
    const res = await introspect(token);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      active: true,
      token_type: 'Bearer',
      scope: appScope,
      client_id: app.id,
      sub: user.id,
      iss: issuerOf(server),
      aud: server.base,
      patient: 'pat-1',
      fhirUser: `${server.base}/Patient/pat-1`,
      exp: expect.any(Number),
      iat: expect.any(Number),
    });
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  test('a refresh token is active for the client it was issued to', async () => {
    const tokens = await appTokens();
    const confidentialApp = await registerConfidentialClient(server, appScope, { redirectUris: ['https://c.example/cb'] });
    const code = await insertAuthorizationCode(server, { clientId: confidentialApp.id, userId: user.id, redirectUri: 'https://c.example/cb', scope: 'patient/*.rs offline_access', patient: 'pat-1' });
    const own = await postForm(server, '/auth/token', { grant_type: 'authorization_code', code, redirect_uri: 'https://c.example/cb' }, basicAuth(confidentialApp.id, confidentialApp.secret));
    const res = await introspect(own.json.refresh_token as string, confidentialApp, { token_type_hint: 'refresh_token' });
    expect(res.json).toMatchObject({ active: true, token_type: 'refresh_token', client_id: confidentialApp.id, scope: 'patient/*.rs offline_access', patient: 'pat-1' });
    // Another client's refresh token is not disclosed.
    expect((await introspect(tokens.json.refresh_token as string, confidentialApp)).json).toEqual({ active: false });
  });

  test('a garbage token is inactive', async () => {
    expect((await introspect('garbage')).json).toEqual({ active: false });
    expect((await introspect('a.b.c')).json).toEqual({ active: false });
  });

  test('a revoked access token is inactive', async () => {
    const tokens = await appTokens();
    await postForm(server, '/auth/revoke', { client_id: app.id, token: tokens.json.access_token as string });
    expect((await introspect(tokens.json.access_token as string)).json).toEqual({ active: false });
  });

  test('a backend services client may introspect with private_key_jwt', async () => {
    const backend = await registerBackendClient(server, 'system/*.read');
    const token = (await clientCredentials(server, resourceServer, 'system/*.read')).json.access_token as string;
    const res = await postForm(server, '/auth/introspect', { token, ...(await assertionForm(server, backend)) });
    expect(res.json).toMatchObject({ active: true, client_id: resourceServer.id, scope: 'system/*.read' });
  });

  test('introspection without client authentication is 401', async () => {
    const res = await postForm(server, '/auth/introspect', { token: 'x' });
    expect(res.status).toBe(401);
    expect(res.json.error).toBe('invalid_client');
  });

  test('a public client cannot introspect', async () => {
    const res = await postForm(server, '/auth/introspect', { token: 'x', client_id: app.id });
    expect(res.status).toBe(401);
  });
});

/** The admin CLI, as an operator runs it, on this file's server's database. */
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'scripts/cli.ts', ...args], { cwd: path.join(__dirname, '../..'), env: { ...process.env, DATABASE_URL: server.databaseUrl } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    );
  });
}

describe('grant revoke (admin CLI)', () => {
  test("with --username ends what the client was granted for that user: access tokens refused, refresh token refused, pending code dropped; another user's grant stands", async () => {
    const other = await registerUser(server, 'Patient/pat-2', 'patient');
    const mine = await appTokens();
    const refreshed = await postForm(server, '/auth/token', { grant_type: 'refresh_token', client_id: app.id, refresh_token: mine.json.refresh_token as string });
    const theirs = await appTokens(other);
    const { challenge } = pkcePair();
    await insertAuthorizationCode(server, { clientId: app.id, userId: user.id, redirectUri: app.redirectUri, scope: appScope, codeChallenge: challenge, patient: 'pat-1' });
    for (const t of [mine, refreshed, theirs]) expect((await fhirGet(server, 'Patient/pat-1', t.json.access_token as string)).status).not.toBe(401);

    const run = await cli('grant', 'revoke', '--client', app.id, '--username', user.username);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/refresh tokens, 1 authorization codes not yet exchanged/);
    await new Promise((r) => setTimeout(r, 1100)); // the other processes' view may be a second old; this one's too, since the CLI is another process
    for (const t of [mine, refreshed]) {
      expect((await fhirGet(server, 'Patient/pat-1', t.json.access_token as string)).status).toBe(401);
      expect((await introspect(t.json.access_token as string)).json).toEqual({ active: false });
    }
    const refresh = await postForm(server, '/auth/token', { grant_type: 'refresh_token', client_id: app.id, refresh_token: refreshed.json.refresh_token as string });
    expect(refresh.json.error).toBe('invalid_grant');
    expect(await server.server.knex('auth_code').where({ client_id: app.id, user_id: user.id }).whereNull('used_at').first()).toBeUndefined();
    expect((await fhirGet(server, 'Patient/pat-1', theirs.json.access_token as string)).status).not.toBe(401);
    // A new authorization after the revocation works.
    await new Promise((r) => setTimeout(r, 1000));
    const again = await appTokens();
    expect((await fhirGet(server, 'Patient/pat-1', again.json.access_token as string)).status).not.toBe(401);
  }, 30000);

  test("without --username ends the client's grants for everyone, its own client_credentials tokens too; an unknown client or user is refused", async () => {
    const backend = await registerConfidentialClient(server, 'system/*.read');
    const token = (await clientCredentials(server, backend, 'system/*.read')).json.access_token as string;
    expect((await fhirGet(server, 'Patient', token)).status).toBe(200);
    expect((await cli('grant', 'revoke', '--client', backend.id)).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await fhirGet(server, 'Patient', token)).status).toBe(401);
    const nobody = await cli('grant', 'revoke', '--client', 'no-such-client');
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toMatch(/no client 'no-such-client'/);
    expect((await cli('grant', 'revoke', '--client', app.id, '--username', 'no-such-user')).stderr).toMatch(/no user 'no-such-user'/);
  }, 30000);
});

describe('revocation', () => {
  test('a revoked access token is refused by the FHIR API at once', async () => {
    const token = (await clientCredentials(server, resourceServer, 'system/*.read')).json.access_token as string;
    expect((await fhirGet(server, 'Patient', token)).status).toBe(200);
    const res = await postForm(server, '/auth/revoke', { token }, basicAuth(resourceServer.id, resourceServer.secret));
    expect(res.status).toBe(200);
    expect((await fhirGet(server, 'Patient', token)).status).toBe(401);
  });

  test('revoking a refresh token revokes its family', async () => {
    const first = await appTokens();
    const second = await postForm(server, '/auth/token', { grant_type: 'refresh_token', client_id: app.id, refresh_token: first.json.refresh_token as string });
    expect((await postForm(server, '/auth/revoke', { client_id: app.id, token: second.json.refresh_token as string, token_type_hint: 'refresh_token' })).status).toBe(200);
    const res = await postForm(server, '/auth/token', { grant_type: 'refresh_token', client_id: app.id, refresh_token: second.json.refresh_token as string });
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('invalid_grant');
  });

  test('revoking a refresh token also revokes the access tokens its family issued, the first and the refreshed ones, and nobody else’s', async () => {
    const first = await appTokens();
    const second = await postForm(server, '/auth/token', { grant_type: 'refresh_token', client_id: app.id, refresh_token: first.json.refresh_token as string });
    expect(second.status).toBe(200);
    const other = await appTokens();
    const accessTokens = [first.json.access_token as string, second.json.access_token as string];
    for (const token of [...accessTokens, other.json.access_token as string]) expect((await fhirGet(server, 'Patient/pat-1', token)).status).not.toBe(401);

    expect((await postForm(server, '/auth/revoke', { client_id: app.id, token: second.json.refresh_token as string })).status).toBe(200);
    for (const token of accessTokens) {
      expect((await fhirGet(server, 'Patient/pat-1', token)).status).toBe(401);
      expect((await introspect(token)).json).toEqual({ active: false });
    }
    // Another authorization of the same client and user is its own family.
    expect((await fhirGet(server, 'Patient/pat-1', other.json.access_token as string)).status).not.toBe(401);
    expect((await introspect(other.json.access_token as string)).json.active).toBe(true);
  });

  test('a refresh token replayed after rotation revokes the access tokens of its family too', async () => {
    const first = await appTokens();
    const second = await postForm(server, '/auth/token', { grant_type: 'refresh_token', client_id: app.id, refresh_token: first.json.refresh_token as string });
    const replay = await postForm(server, '/auth/token', { grant_type: 'refresh_token', client_id: app.id, refresh_token: first.json.refresh_token as string });
    expect(replay.json.error).toBe('invalid_grant');
    expect((await fhirGet(server, 'Patient/pat-1', second.json.access_token as string)).status).toBe(401);
    expect((await fhirGet(server, 'Patient/pat-1', first.json.access_token as string)).status).toBe(401);
  });

  test('an unknown token is answered 200', async () => {
    const res = await postForm(server, '/auth/revoke', { client_id: app.id, token: 'never-issued' });
    expect(res.status).toBe(200);
  });

  test('a client cannot revoke another client’s token', async () => {
    const token = (await clientCredentials(server, resourceServer, 'system/*.read')).json.access_token as string;
    await postForm(server, '/auth/revoke', { client_id: app.id, token });
    expect((await fhirGet(server, 'Patient', token)).status).toBe(200);
  });

  test('a confidential client must authenticate to revoke', async () => {
    const token = (await clientCredentials(server, resourceServer, 'system/*.read')).json.access_token as string;
    const res = await postForm(server, '/auth/revoke', { client_id: resourceServer.id, token });
    expect(res.status).toBe(401);
    expect((await fhirGet(server, 'Patient', token)).status).toBe(200);
  });
});
