import { invalidClient, invalidRequest, type AuthContext, type AuthRequest, type AuthResponse } from './auth-exchange';
import { verifiedAccessTokenClaims } from './access-token';
import { authenticateClient } from './client-authentication';
import { findRefreshToken, isRefreshTokenActive } from './refresh-family';
import { hashToken } from './secret-hash';
import { NO_STORE } from './token-response';
import { findUserById } from './user-store';

type Introspection = Record<string, unknown>;

/**
 * POST /auth/introspect (RFC 7662, SMART App Launch §"Token introspection"). The caller
 * authenticates as a confidential client (client_secret_basic, client_secret_post or
 * private_key_jwt): resource servers and backend services are such clients. A bearer
 * token alone is not accepted, so a leaked access token cannot probe other tokens.
 * Any access token of ours can be introspected; a refresh token only by the client it
 * was issued to. Everything else is `active: false`.
 */
export async function introspect(req: AuthRequest, context: AuthContext): Promise<AuthResponse> {
  const { client, method } = await authenticateClient(req, context);
  if (method === 'none') throw invalidClient('Introspection requires client authentication');
  const token = req.form.token;
  if (!token) throw invalidRequest('token is required');
  // Access tokens are JWTs (three dot-separated parts); refresh tokens are opaque base64url.
  const json = token.includes('.') ? await accessToken(context, token) : await refreshToken(context, token, client.id);
  return { status: 200, json: json ?? { active: false }, headers: NO_STORE };
}

async function accessToken(context: AuthContext, token: string): Promise<Introspection | undefined> {
  const claims = await verifiedAccessTokenClaims(context, token);
  if (!claims) return undefined;
  const { iss, aud, sub, client_id, scope, exp, iat, jti, patient, encounter, fhirUser, role } = claims as Record<string, unknown>;
  return withoutUndefined({
    active: true,
    token_type: 'Bearer',
    scope,
    client_id,
    sub,
    exp,
    iat,
    iss,
    aud,
    jti,
    patient,
    encounter,
    // As in the id_token: an absolute URL (SMART App Launch §"Token introspection").
    fhirUser: typeof fhirUser === 'string' ? `${context.fhirBase}/${fhirUser}` : undefined,
    role,
  });
}

async function refreshToken(context: AuthContext, token: string, callerId: string): Promise<Introspection | undefined> {
  const row = await findRefreshToken(context.knex, hashToken(token));
  if (!row || row.client_id !== callerId || !isRefreshTokenActive(row)) return undefined;
  const user = row.user_id ? await findUserById(context.knex, row.user_id) : undefined;
  return withoutUndefined({
    active: true,
    token_type: 'refresh_token',
    scope: row.scope,
    client_id: row.client_id,
    sub: row.user_id ?? row.client_id,
    exp: Math.floor(row.expires_at.getTime() / 1000),
    iat: Math.floor(row.created_at.getTime() / 1000),
    iss: context.issuer,
    patient: row.patient ?? undefined,
    encounter: row.encounter ?? undefined,
    fhirUser: user ? `${context.fhirBase}/${user.fhirUser}` : undefined,
  });
}

function withoutUndefined(record: Introspection): Introspection {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined));
}
