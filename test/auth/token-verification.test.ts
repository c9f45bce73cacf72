import { randomUUID } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { createSigningKeys } from '../../server/auth/signing-keys';
import { startTestServer, type TestServer } from '../support/test-server';
import { clientCredentials, fhirGet, issuerOf, jwtClaims, jwtHeader, registerConfidentialClient, type ConfidentialClient } from '../support/oauth';

let server: TestServer;
let client: ConfidentialClient;

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  client = await registerConfidentialClient(server, 'system/*.read');
});
afterAll(() => server.stop());

async function token(): Promise<string> {
  const res = await clientCredentials(server, client, 'system/*.read');
  expect(res.status).toBe(200);
  return res.json.access_token as string;
}

/** Claims as the server would sign them, for forging variants. */
function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return { iss: issuerOf(server), aud: server.base, sub: client.id, client_id: client.id, scope: 'system/*.read', jti: randomUUID(), iat: now, exp: now + 300, ...overrides };
}

/** Signs with the server's own current private key (read from the database). */
async function signWithServerKey(payload: Record<string, unknown>, typ = 'at+jwt'): Promise<string> {
  await token();
  const row: { kid: string; private_jwk: JWK } = await server.server.knex('auth_signing_key').orderBy('created_at', 'desc').first();
  const key = await importJWK(row.private_jwk, 'RS256');
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: row.kid, typ }).sign(key);
}

async function expectInvalidToken(bearer: string): Promise<void> {
  const res = await fhirGet(server, 'Patient', bearer);
  expect(res.status).toBe(401);
  expect(res.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
}

describe('tokens that are refused with 401 and a Bearer challenge', () => {
  test('a garbage token', () => expectInvalidToken('not.a.jwt'));

  test('an expired token signed by this server', async () => expectInvalidToken(await signWithServerKey(claims({ iat: 1, exp: Math.floor(Date.now() / 1000) - 5 }))));

  test('a token for another audience', async () => expectInvalidToken(await signWithServerKey(claims({ aud: 'https://other.example/fhir' }))));

  test('a token from another issuer', async () => expectInvalidToken(await signWithServerKey(claims({ iss: 'https://other.example' }))));

  test('an id_token (typ JWT) presented as an access token', async () => expectInvalidToken(await signWithServerKey(claims(), 'JWT')));

  test('a token signed by a key of the same kid that is not ours', async () => {
    const kid = jwtHeader(await token()).kid as string;
    const { privateKey } = await generateKeyPair('RS256');
    await expectInvalidToken(await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid, typ: 'at+jwt' }).sign(privateKey));
  });

  test('an unsigned token (alg none)', async () => {
    const kid = jwtHeader(await token()).kid as string;
    const encode = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    await expectInvalidToken(`${encode({ alg: 'none', kid, typ: 'at+jwt' })}.${encode(claims())}.`);
  });

  test('a token whose signature was altered', async () => {
    const valid = await token();
    const [header, payload] = valid.split('.');
    const tampered = Buffer.from(JSON.stringify({ ...jwtClaims(valid), scope: 'system/*.*' })).toString('base64url');
    await expectInvalidToken(`${header}.${tampered}.${valid.split('.')[2]}`);
    expect(payload).not.toBe(tampered);
  });
});

describe('revocation', () => {
  test('an access token revoked by another process is refused within 1.5 seconds', async () => {
    const bearer = await token();
    expect((await fhirGet(server, 'Patient', bearer)).status).toBe(200);
    const { jti, exp } = jwtClaims(bearer) as { jti: string; exp: number };
    const revokedAt = Date.now();
    await server.server.knex('auth_revoked_token').insert({ jti, expires_at: new Date(exp * 1000) });
    let status = 200;
    while (status !== 401 && Date.now() - revokedAt < 3000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = (await fhirGet(server, 'Patient', bearer)).status;
    }
    expect(status).toBe(401);
    expect(Date.now() - revokedAt).toBeLessThan(1500);
  });
});

describe('signing keys', () => {
  test('a key created by another process is used to verify at once', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const publicJwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    await server.server.knex.raw(
      `INSERT INTO auth_signing_key (kid, alg, private_jwk, public_jwk, rotate_at, retired_at)
       VALUES (?, 'RS256', ?, ?, now() - interval '1 second', now() + interval '1 hour')`,
      [kid, JSON.stringify(await exportJWK(privateKey)), JSON.stringify(publicJwk)]
    );
    const bearer = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid, typ: 'at+jwt' }).sign(privateKey);
    expect((await fhirGet(server, 'Patient', bearer)).status).toBe(200);
  });

  test('two processes that find no current key create only one', async () => {
    const { knex } = server.server;
    await knex('auth_signing_key').update({ rotate_at: knex.fn.now() });
    const processes = [createSigningKeys(knex, 3600, 900), createSigningKeys(knex, 3600, 900)];
    const tokens = await Promise.all(processes.flatMap((keys) => [keys.sign({ n: 1 }, 'JWT'), keys.sign({ n: 2 }, 'JWT')]));
    expect(new Set(tokens.map((t) => jwtHeader(t).kid)).size).toBe(1);
    const [{ n }] = await knex('auth_signing_key').where('rotate_at', '>', knex.fn.now()).count('* as n');
    expect(Number(n)).toBe(1);
  });

  test('after rotation a token of the previous key still verifies, the JWKS holds both keys, and a retired key is dropped', async () => {
    const { knex } = server.server;
    const beforeRotation = await token();
    // Tokens of the old key never presented before (a verified token is remembered until it expires).
    const unusedBeforeRotation = await Promise.all(Array.from({ length: 30 }, () => token()));
    // The previous test rotated behind the server's back: until its key cache rereads, the
    // server may still sign with the key it had, so these tokens can carry two kids. Rotate
    // (and later retire) every one of them.
    const oldKids = [...new Set([beforeRotation, ...unusedBeforeRotation].map((t) => jwtHeader(t).kid as string))];
    await knex('auth_signing_key').whereIn('kid', oldKids).update({ rotate_at: knex.fn.now() });

    // Each process rereads the keys every few seconds: wait for a token signed by a new key.
    let newKid = oldKids[0];
    const deadline = Date.now() + 5000;
    while (oldKids.includes(newKid) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      newKid = jwtHeader(await token()).kid as string;
    }
    expect(oldKids).not.toContain(newKid);
    expect((await fhirGet(server, 'Patient', beforeRotation)).status).toBe(200);
    const jwks = (await (await fetch(`${issuerOf(server)}/auth/jwks`)).json()) as { keys: JWK[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([...oldKids, newKid]));
    for (const key of jwks.keys) {
      expect(key).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
      expect(key.d).toBeUndefined();
    }

    await knex('auth_signing_key').whereIn('kid', oldKids).update({ retired_at: knex.fn.now() });
    let published = true;
    while (published && Date.now() < deadline + 5000) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const keys = (await (await fetch(`${issuerOf(server)}/auth/jwks`)).json()) as { keys: JWK[] };
      published = keys.keys.some((k) => oldKids.includes(k.kid as string));
    }
    expect(published).toBe(false);
    // The bearer verifier rereads the keys on the same period as the JWKS (stale while
    // revalidating): within a few seconds a token of the retired key is refused.
    let attempt = 0;
    while (attempt < unusedBeforeRotation.length - 1 && (await fhirGet(server, 'Patient', unusedBeforeRotation[attempt])).status !== 401) {
      attempt++;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await expectInvalidToken(unusedBeforeRotation[attempt]);
  });
});
