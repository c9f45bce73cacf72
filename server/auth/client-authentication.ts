import type { Knex } from 'knex';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { invalidClient, invalidRequest, type AuthContext, type AuthRequest } from './auth-exchange';
import { findClient, type OAuthClient } from './client-store';
import { verifySecret } from './secret-hash';

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';

export interface AuthenticatedClient {
  client: OAuthClient;
  /** `none`: a public client that named itself by client_id (nothing proven). */
  method: ClientAuthMethod;
}

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** SMART Backend Services: servers SHALL support RS384 and ES384; nothing else is accepted. */
export const CLIENT_ASSERTION_ALGS = ['RS384', 'ES384'];
/** SMART Backend Services: exp no more than five minutes in the future. */
const ASSERTION_MAX_SECONDS = 300;
/** Tolerated clock difference between the client and us. */
const CLOCK_SKEW_SECONDS = 10;
const REMOTE_JWKS_MAX = 100;

/** The token endpoint URL: the audience of client assertions (SMART Backend Services). */
export function tokenEndpointUrl(context: AuthContext): string {
  return `${context.issuer}/auth/token`;
}

/**
 * Who the client is (RFC 6749 §2.3): HTTP Basic, client_secret in the form, a
 * private_key_jwt assertion (RFC 7523, SMART Backend Services), or, for a public client,
 * client_id alone. Exactly one method; a confidential client that does not prove itself,
 * an unknown client or bad credentials → 401 invalid_client.
 */
export async function authenticateClient(req: AuthRequest, context: AuthContext): Promise<AuthenticatedClient> {
  const basic = basicCredentials(req.headers.authorization);
  const { client_id: formId, client_secret: formSecret, client_assertion: assertion, client_assertion_type: assertionType } = req.form;
  const methods = [basic, formSecret, assertion].filter((m) => m !== undefined).length;
  if (methods > 1) throw invalidRequest('Use exactly one client authentication method');

  if (basic) {
    if (formId !== undefined && formId !== basic.id) throw invalidRequest('client_id differs from the HTTP Basic client id');
    return { client: await clientWithSecret(context.knex, basic.id, basic.secret, true), method: 'client_secret_basic' };
  }
  if (formSecret !== undefined) {
    if (!formId) throw invalidRequest('client_secret requires client_id');
    return { client: await clientWithSecret(context.knex, formId, formSecret, false), method: 'client_secret_post' };
  }
  if (assertion !== undefined) {
    if (assertionType !== JWT_BEARER) throw invalidRequest(`client_assertion_type must be ${JWT_BEARER}`);
    return { client: await clientWithAssertion(req, context, assertion, formId), method: 'private_key_jwt' };
  }
  if (!formId) throw invalidClient('Client authentication is required');
  const client = await findClient(context.knex, formId);
  if (!client) throw invalidClient('Unknown client');
  if (!client.public) throw invalidClient('This client must authenticate');
  return { client, method: 'none' };
}

/** RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding. */
function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf-8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw invalidClient('Malformed HTTP Basic credentials', true);
  const formDecode = (s: string): string => {
    try {
      return decodeURIComponent(s.replace(/\+/g, ' '));
    } catch {
      throw invalidClient('Malformed HTTP Basic credentials', true);
    }
  };
  return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
}

async function clientWithSecret(knex: Knex, id: string, secret: string, basic: boolean): Promise<OAuthClient> {
  const client = await findClient(knex, id);
  // The same answer for an unknown client and a wrong secret: ids are not probed.
  if (!client?.secretHash || !(await verifySecret(client.secretHash, secret))) {
    throw invalidClient('Unknown client or wrong secret', basic);
  }
  return client;
}

async function clientWithAssertion(req: AuthRequest, context: AuthContext, assertion: string, formId: string | undefined): Promise<OAuthClient> {
  let unverified;
  try {
    unverified = decodeJwt(assertion);
  } catch {
    throw invalidClient('client_assertion is not a JWT');
  }
  const id = unverified.iss;
  if (typeof id !== 'string' || (formId !== undefined && formId !== id)) throw invalidClient('client_assertion iss must be the client_id');
  const client = await findClient(context.knex, id);
  if (!client || (!client.jwks && !client.jwksUrl)) throw invalidClient('Unknown client or no registered keys');

  // The token endpoint is the audience SMART prescribes; introspection and revocation also accept their own URL.
  // Also under the origin the request reached (localhost and 127.0.0.1 are the same server).
  const audience = [...new Set([tokenEndpointUrl(context), `${context.issuer}${req.path}`, `${req.origin}/auth/token`, `${req.origin}${req.path}`])];
  let payload;
  try {
    ({ payload } = await jwtVerify(assertion, clientKeys(client), {
      algorithms: CLIENT_ASSERTION_ALGS,
      issuer: id,
      subject: id,
      audience,
      requiredClaims: ['exp', 'jti'],
      clockTolerance: CLOCK_SKEW_SECONDS,
    }));
  } catch (err) {
    throw invalidClient(`client_assertion rejected: ${(err as Error).message}`);
  }
  const exp = payload.exp as number;
  if (exp > Date.now() / 1000 + ASSERTION_MAX_SECONDS + CLOCK_SKEW_SECONDS) throw invalidClient('client_assertion exp is more than 5 minutes ahead');
  if (typeof payload.jti !== 'string' || payload.jti === '') throw invalidClient('client_assertion jti is required');
  await rememberJti(context.knex, id, payload.jti, exp);
  return client;
}

const remoteKeySets = new Map<string, JWTVerifyGetKey>();

/** Inline keys, or the client's JWKS URL (fetched and cached by jose, refetched for an unknown kid). */
function clientKeys(client: OAuthClient): JWTVerifyGetKey {
  if (client.jwks) return createLocalJWKSet(client.jwks);
  const url = client.jwksUrl as string;
  let keys = remoteKeySets.get(url);
  if (!keys) {
    keys = createRemoteJWKSet(new URL(url));
    if (remoteKeySets.size >= REMOTE_JWKS_MAX) remoteKeySets.delete(remoteKeySets.keys().next().value as string);
    remoteKeySets.set(url, keys);
  }
  return keys;
}

let purgedAt = 0;

/**
 * An assertion is good once (RFC 7523 §3 item 7): the primary key refuses a second
 * insert, in any process. Rows go once the assertion expired; purged at most once a minute.
 */
async function rememberJti(knex: Knex, clientId: string, jti: string, exp: number): Promise<void> {
  const inserted = await knex('auth_used_jti')
    .insert({ client_id: clientId, jti, expires_at: new Date((exp + CLOCK_SKEW_SECONDS) * 1000) })
    .onConflict(['client_id', 'jti'])
    .ignore()
    .returning('jti');
  if (inserted.length === 0) throw invalidClient('client_assertion jti was already used');
  if (Date.now() - purgedAt > 60_000) {
    purgedAt = Date.now();
    await knex('auth_used_jti').where('expires_at', '<', knex.fn.now()).delete();
  }
}
