import { randomUUID } from 'node:crypto';
import type { JWTPayload } from 'jose';
import type { Principal } from '../access/principal';
import type { AuthContext, BearerVerifier } from './auth-exchange';
import { type IssuedToken, revokedTokensFor } from './revoked-tokens';
import { signingKeysFor } from './signing-keys';

/** RFC 9068's media type: an id_token (typ JWT) can never pass as an access token. */
const ACCESS_TOKEN_TYP = 'at+jwt';
/** Verified tokens kept per process; a FHIR client sends the same token many times. */
const CACHE_MAX = 10_000;

/** What a token says about who asks (the Principal its verification yields, less the token's own id and expiry). */
export type AccessTokenClaims = Pick<Principal, 'clientId' | 'userId' | 'fhirUser' | 'role' | 'scope' | 'patient' | 'encounter'>;

export interface IssuedAccessToken {
  token: string;
  jti: string;
  /** Seconds (the token response's expires_in). */
  expiresIn: number;
}

/**
 * A signed JWT (RS256): iss = the issuer, aud = the FHIR base, sub = the user (or the
 * client when there is none), client_id, scope, jti, iat, exp, and the launch context
 * and user claims when present. `jti` may be chosen by the caller (the first token of an
 * authorization code carries the code's family id, so a replayed code can revoke it).
 */
export async function issueAccessToken(context: AuthContext, claims: AccessTokenClaims, jti: string = randomUUID()): Promise<IssuedAccessToken> {
  const expiresIn = context.config.auth.accessTokenSeconds;
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    iss: context.issuer,
    aud: context.fhirBase,
    sub: claims.userId ?? claims.clientId,
    client_id: claims.clientId,
    scope: claims.scope,
    jti,
    iat: now,
    exp: now + expiresIn,
  };
  if (claims.patient !== undefined) payload.patient = claims.patient;
  if (claims.encounter !== undefined) payload.encounter = claims.encounter;
  if (claims.fhirUser !== undefined) payload.fhirUser = claims.fhirUser;
  if (claims.role !== undefined) payload.role = claims.role;
  const token = await signingKeysFor(context).sign(payload, ACCESS_TOKEN_TYP);
  return { token, jti, expiresIn };
}

/**
 * The claims of an access token this server issued: signature by one of our keys
 * (RS256 only), typ at+jwt, iss, aud, exp, and not revoked; otherwise undefined (never
 * throws for a bad token). Introspection and revocation read them.
 */
export async function verifiedAccessTokenClaims(context: AuthContext, token: string): Promise<JWTPayload | undefined> {
  let payload;
  try {
    payload = await signingKeysFor(context).verify(token, {
      issuer: context.issuer,
      audience: context.fhirBase,
      typ: ACCESS_TOKEN_TYP,
      requiredClaims: ['exp', 'iat', 'jti', 'sub'],
    });
  } catch {
    return undefined;
  }
  const issued = issuedToken(payload);
  if (!issued || (await revokedTokensFor(context).isRevoked(issued))) return undefined;
  return payload;
}

/** Who the token was issued to and when, for revocation (revoked-tokens.ts). */
function issuedToken(payload: JWTPayload): IssuedToken | undefined {
  const { jti, sub, client_id: clientId, iat } = payload as JWTPayload & { client_id?: unknown };
  if (typeof jti !== 'string' || typeof sub !== 'string' || typeof clientId !== 'string' || typeof iat !== 'number') return undefined;
  return { jti, clientId, userId: sub !== clientId ? sub : undefined, issuedAt: iat };
}

/** The principal of a valid access token (see verifiedAccessTokenClaims), or undefined. */
export async function verifyAccessToken(context: AuthContext, token: string): Promise<Principal | undefined> {
  return (await verifiedToken(context, token))?.principal;
}

async function verifiedToken(context: AuthContext, token: string): Promise<{ principal: Principal; issued: IssuedToken } | undefined> {
  const payload = await verifiedAccessTokenClaims(context, token);
  const principal = payload && toPrincipal(payload);
  const issued = payload && issuedToken(payload);
  return principal && issued ? { principal, issued } : undefined;
}

function toPrincipal(payload: Record<string, unknown>): Principal | undefined {
  const { jti, sub, client_id: clientId, scope, exp } = payload;
  if (typeof jti !== 'string' || typeof sub !== 'string' || typeof clientId !== 'string' || typeof scope !== 'string' || typeof exp !== 'number') {
    return undefined;
  }
  const optional = (name: string): string | undefined => (typeof payload[name] === 'string' ? (payload[name] as string) : undefined);
  return {
    tokenId: jti,
    clientId,
    // client_credentials tokens have the client as subject; user ids are UUIDs, never a client id.
    userId: sub !== clientId ? sub : undefined,
    fhirUser: optional('fhirUser'),
    role: optional('role'),
    scope,
    patient: optional('patient'),
    encounter: optional('encounter'),
    expiresAt: exp,
  };
}

/**
 * The bearer verifier of the FHIR API, called on every request: a token verified once is
 * kept (bounded LRU, dropped at its exp) so later requests cost a map lookup and the
 * revocation check. Revocation is seen by every process within about one second:
 * revoked-tokens.ts refreshes its set from auth_revoked_token when it is older than that.
 */
export function accessTokenVerifier(context: AuthContext): BearerVerifier {
  const cache = new Map<string, { principal: Principal; issued: IssuedToken }>();
  const revoked = revokedTokensFor(context);
  return async (token) => {
    const cached = cache.get(token);
    if (cached) {
      cache.delete(token);
      if (cached.principal.expiresAt * 1000 <= Date.now() || (await revoked.isRevoked(cached.issued))) return undefined;
      cache.set(token, cached);
      return cached.principal;
    }
    const verified = await verifiedToken(context, token);
    if (verified) {
      cache.set(token, verified);
      if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value as string);
    }
    return verified?.principal;
  };
}
