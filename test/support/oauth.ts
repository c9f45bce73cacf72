import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { saveClient } from '../../server/auth/client-store';
import { hashToken } from '../../server/auth/secret-hash';
import { saveUser, type Role, type UserAccount } from '../../server/auth/user-store';
import type { TestServer } from './test-server';

/** The issuer (PUBLIC_URL) of a test server: its FHIR base without /fhir. */
export function issuerOf(server: TestServer): string {
  return server.base.replace(/\/fhir$/, '');
}

export function tokenUrl(server: TestServer): string {
  return `${issuerOf(server)}/auth/token`;
}

export interface FormResponse {
  status: number;
  headers: Headers;
  /** The parsed JSON body (undefined when there was none). */
  json: Record<string, unknown>;
}

/** POSTs an application/x-www-form-urlencoded body; `path` is relative to the issuer (e.g. /auth/token). */
export async function postForm(server: TestServer, path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<FormResponse> {
  const res = await fetch(`${issuerOf(server)}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic. */
export function basicAuth(id: string, secret: string): Record<string, string> {
  const encode = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
  return { Authorization: `Basic ${Buffer.from(`${encode(id)}:${encode(secret)}`).toString('base64')}` };
}

export interface ConfidentialClient {
  id: string;
  secret: string;
}

/** A client_secret_basic / client_secret_post client. */
export async function registerConfidentialClient(server: TestServer, scope: string, options: { id?: string; redirectUris?: string[] } = {}): Promise<ConfidentialClient> {
  const id = options.id ?? `confidential-${randomUUID()}`;
  const secret = randomBytes(24).toString('base64url');
  await saveClient(server.server.knex, { id, secret, scope, redirectUris: options.redirectUris ?? [] });
  return { id, secret };
}

export interface PublicClient {
  id: string;
  redirectUri: string;
}

export async function registerPublicClient(server: TestServer, scope: string, redirectUri = 'https://app.example/callback'): Promise<PublicClient> {
  const id = `public-${randomUUID()}`;
  await saveClient(server.server.knex, { id, public: true, scope, redirectUris: [redirectUri] });
  return { id, redirectUri };
}

export type AssertionAlg = 'ES384' | 'RS384' | 'RS256' | 'ES256';

export interface KeyPair {
  alg: AssertionAlg;
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function makeKeyPair(alg: AssertionAlg = 'ES384'): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomUUID();
  return { alg, kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export interface BackendClient {
  id: string;
  key: KeyPair;
}

/** A SMART Backend Services client (private_key_jwt) with its public key registered inline. */
export async function registerBackendClient(server: TestServer, scope: string, alg: AssertionAlg = 'ES384'): Promise<BackendClient> {
  const id = `backend-${randomUUID()}`;
  const key = await makeKeyPair(alg);
  await saveClient(server.server.knex, { id, scope, jwks: { keys: [key.publicJwk] } });
  return { id, key };
}

export interface AssertionOptions {
  /** Sign with this key instead of the client's (e.g. a key it never registered). */
  key?: KeyPair;
  /** Header alg (defaults to the key's). */
  alg?: string;
  aud?: string;
  expiresInSeconds?: number;
  jti?: string;
  iss?: string;
}

/** SMART Backend Services client assertion: iss = sub = client_id, aud = token URL, exp ≤ 5 min, unique jti. */
export async function clientAssertion(server: TestServer, client: BackendClient, options: AssertionOptions = {}): Promise<string> {
  const key = options.key ?? client.key;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: options.jti ?? randomUUID() })
    .setProtectedHeader({ alg: options.alg ?? key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(options.iss ?? client.id)
    .setSubject(client.id)
    .setAudience(options.aud ?? tokenUrl(server))
    .setExpirationTime(now + (options.expiresInSeconds ?? 240))
    .sign(key.privateKey);
}

/** The form fields of private_key_jwt client authentication. */
export async function assertionForm(server: TestServer, client: BackendClient, options: AssertionOptions = {}): Promise<Record<string, string>> {
  return {
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: await clientAssertion(server, client, options),
  };
}

/** client_credentials with client_secret_basic (or private_key_jwt for a BackendClient); the whole token response. */
export async function clientCredentials(server: TestServer, client: ConfidentialClient | BackendClient, scope: string): Promise<FormResponse> {
  if ('secret' in client) {
    return postForm(server, '/auth/token', { grant_type: 'client_credentials', scope }, basicAuth(client.id, client.secret));
  }
  return postForm(server, '/auth/token', { grant_type: 'client_credentials', scope, ...(await assertionForm(server, client)) });
}

/** A confidential client registered for `scope` and a client_credentials access token for it. */
export async function systemAccessToken(server: TestServer, scope: string): Promise<string> {
  const client = await registerConfidentialClient(server, scope);
  const res = await clientCredentials(server, client, scope);
  if (res.status !== 200) throw new Error(`client_credentials failed: ${JSON.stringify(res.json)}`);
  return res.json.access_token as string;
}

export async function registerUser(server: TestServer, fhirUser: string, role: Role): Promise<UserAccount> {
  return saveUser(server.server.knex, { username: `user-${randomUUID()}`, password: 'correct horse battery staple', fhirUser, role });
}

/** RFC 7636 S256: a random verifier and its challenge. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export interface CodeRow {
  clientId: string;
  userId: string;
  redirectUri: string;
  scope: string;
  codeChallenge?: string;
  codeChallengeMethod?: string;
  nonce?: string;
  patient?: string;
  encounter?: string;
  needPatientBanner?: boolean;
  /** Negative for an expired code. */
  expiresInSeconds?: number;
}

/** Writes an auth_code row as /auth/authorize would, so the token endpoint can be tested without the login pages; returns the code. */
export async function insertAuthorizationCode(server: TestServer, row: CodeRow): Promise<string> {
  const code = randomBytes(32).toString('base64url');
  await server.server.knex('auth_code').insert({
    code_hash: hashToken(code),
    client_id: row.clientId,
    user_id: row.userId,
    redirect_uri: row.redirectUri,
    scope: row.scope,
    code_challenge: row.codeChallenge ?? null,
    code_challenge_method: row.codeChallenge ? (row.codeChallengeMethod ?? 'S256') : null,
    nonce: row.nonce ?? null,
    patient: row.patient ?? null,
    encounter: row.encounter ?? null,
    need_patient_banner: row.needPatientBanner ?? false,
    expires_at: new Date(Date.now() + (row.expiresInSeconds ?? 60) * 1000),
  });
  return code;
}

/** GET on the FHIR API with a bearer token. */
export async function fhirGet(server: TestServer, path: string, token: string): Promise<Response> {
  return fetch(`${server.base}/${path}`, { headers: { Authorization: `Bearer ${token}`, Accept: 'application/fhir+json' } });
}

/** The decoded payload of a JWT, unverified (for assertions on claims). */
export function jwtClaims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf-8')) as Record<string, unknown>;
}

export function jwtHeader(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf-8')) as Record<string, unknown>;
}
