import { randomBytes, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { splitScopes } from '../access/scopes';
import { issueAccessToken } from './access-token';
import type { AuthContext, AuthResponse } from './auth-exchange';
import { hashToken } from './secret-hash';
import { signingKeysFor } from './signing-keys';
import { profileClaims } from './profile-claims';
import type { UserAccount } from './user-store';

/** RFC 6749 §5.1: token responses must not be cached. */
export const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };
/**
 * online_access (SMART): the refresh token serves while the user is "online"; with no
 * session to watch, that is approximated as a working day, never more than offline.
 */
const ONLINE_REFRESH_SECONDS = 12 * 3600;

/** What a grant established; the token response is built from it alone. */
export interface Grant {
  clientId: string;
  user?: UserAccount;
  /** Granted scopes, space-separated. */
  scope: string;
  patient?: string;
  encounter?: string;
  needPatientBanner?: boolean;
  /** OpenID Connect nonce of the authorization request. */
  nonce?: string;
  /** The refresh-token family this grant belongs to (a code's family, or the family being refreshed). */
  familyId?: string;
  /** The scope the refresh token carries when it differs from the access token's (a narrowed refresh keeps the original). */
  refreshScope?: string;
  /** The jti of the access token (see issueAccessToken). */
  accessTokenJti?: string;
  /** smart_style_url and need_patient_banner belong to launches, not to backend services. */
  launch?: boolean;
}

/**
 * The token response (RFC 6749 §5.1, SMART App Launch §"Access token response"):
 * access_token, and a refresh token for offline_access or online_access, an id_token for
 * openid with fhirUser or profile, and the launch context.
 */
export async function tokenResponse(context: AuthContext, grant: Grant): Promise<AuthResponse> {
  const scopes = splitScopes(grant.scope);
  const access = await issueAccessToken(
    context,
    {
      clientId: grant.clientId,
      userId: grant.user?.id,
      fhirUser: grant.user?.fhirUser,
      role: grant.user?.role,
      scope: grant.scope,
      patient: grant.patient,
      encounter: grant.encounter,
    },
    grant.accessTokenJti
  );
  const body: Record<string, unknown> = {
    access_token: access.token,
    token_type: 'Bearer',
    expires_in: access.expiresIn,
    scope: grant.scope,
  };
  const refreshScopes = splitScopes(grant.refreshScope ?? grant.scope);
  if (refreshScopes.includes('offline_access') || refreshScopes.includes('online_access')) {
    body.refresh_token = await createRefreshToken(context, grant, refreshScopes.includes('offline_access'), access);
  }
  if (grant.user && scopes.includes('openid') && (scopes.includes('fhirUser') || scopes.includes('profile'))) {
    body.id_token = await idToken(context, grant.clientId, grant.user, grant.nonce, scopes.includes('profile'));
  }
  if (grant.patient !== undefined) body.patient = grant.patient;
  if (grant.encounter !== undefined) body.encounter = grant.encounter;
  if (grant.launch) {
    body.need_patient_banner = grant.needPatientBanner ?? false;
    body.smart_style_url = `${context.issuer}/auth/smart-style.json`;
  }
  return { status: 200, json: body, headers: NO_STORE };
}

/**
 * An opaque 256-bit value; only its hash is stored, with the access token issued beside
 * it, which a revocation of the family revokes too (refresh-family.ts).
 */
async function createRefreshToken(context: AuthContext, grant: Grant, offline: boolean, access: { jti: string; expiresIn: number }): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  const { refreshTokenSeconds } = context.config.auth;
  const seconds = offline ? refreshTokenSeconds : Math.min(refreshTokenSeconds, ONLINE_REFRESH_SECONDS);
  await insertRefreshToken(context.knex, {
    token_hash: hashToken(token),
    family_id: grant.familyId ?? randomUUID(),
    client_id: grant.clientId,
    user_id: grant.user?.id ?? null,
    scope: grant.refreshScope ?? grant.scope,
    patient: grant.patient ?? null,
    encounter: grant.encounter ?? null,
    need_patient_banner: grant.needPatientBanner ?? false,
    expires_at: new Date(Date.now() + seconds * 1000),
    access_jti: access.jti,
    access_expires_at: new Date(Date.now() + access.expiresIn * 1000),
  });
  return token;
}

function insertRefreshToken(knex: Knex, row: Record<string, unknown>): Promise<unknown> {
  return knex('auth_refresh_token').insert(row);
}

/**
 * OpenID Connect id_token, with SMART's fhirUser claim as an absolute URL
 * (SMART App Launch §"Scopes for requesting identity data"), and with `profile` granted
 * the standard profile claims from the user's FHIR resource (profile-claims.ts).
 */
async function idToken(context: AuthContext, clientId: string, user: UserAccount, nonce: string | undefined, profile: boolean): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    iss: context.issuer,
    sub: user.id,
    aud: clientId,
    iat: now,
    exp: now + context.config.auth.accessTokenSeconds,
    fhirUser: `${context.fhirBase}/${user.fhirUser}`,
    ...(profile ? await profileClaims(context, user) : {}),
  };
  if (nonce !== undefined) payload.nonce = nonce;
  return signingKeysFor(context).sign(payload, 'JWT');
}
