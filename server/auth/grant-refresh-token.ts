import { grantableScopes, splitScopes } from '../access/scopes';
import { invalidGrant, invalidRequest, invalidScope, type AuthContext, type AuthRequest, type AuthResponse } from './auth-exchange';
import type { AuthenticatedClient } from './client-authentication';
import { findRefreshToken, revokeRefreshFamily } from './refresh-family';
import { hashToken } from './secret-hash';
import { tokenResponse } from './token-response';
import { findUserById } from './user-store';

/**
 * refresh_token (RFC 6749 §6) with rotation: each use consumes the token and issues the
 * next of its family. A token presented again after use (stolen, or replayed) revokes
 * the whole family (OAuth 2.0 Security BCP §4.14.2). The scope parameter may only narrow
 * the original grant; the new refresh token keeps the original scope (RFC 6749 §6).
 */
export async function refreshTokenGrant(req: AuthRequest, context: AuthContext, { client }: AuthenticatedClient): Promise<AuthResponse> {
  const presented = req.form.refresh_token;
  if (!presented) throw invalidRequest('refresh_token is required');
  const { knex } = context;
  const row = await findRefreshToken(knex, hashToken(presented));
  if (!row || row.client_id !== client.id) throw invalidGrant('Unknown refresh token');
  if (row.used_at || row.revoked_at) {
    await revokeRefreshFamily(context, row.family_id);
    throw invalidGrant('The refresh token was already used or revoked; its family is revoked');
  }
  if (row.expires_at.getTime() <= Date.now()) throw invalidGrant('The refresh token expired');
  const scope = narrowedScope(req.form.scope, row.scope);

  const consumed = await knex('auth_refresh_token')
    .where({ token_hash: row.token_hash })
    .whereNull('used_at')
    .whereNull('revoked_at')
    .update({ used_at: knex.fn.now() })
    .returning('token_hash');
  if (consumed.length === 0) {
    await revokeRefreshFamily(context, row.family_id);
    throw invalidGrant('The refresh token was already used or revoked; its family is revoked');
  }
  const user = row.user_id ? await findUserById(knex, row.user_id) : undefined;
  if (row.user_id && !user) throw invalidGrant('The user of this refresh token no longer exists');
  return tokenResponse(context, {
    clientId: client.id,
    user,
    scope,
    refreshScope: row.scope,
    patient: row.patient ?? undefined,
    encounter: row.encounter ?? undefined,
    needPatientBanner: row.need_patient_banner,
    familyId: row.family_id,
    launch: true,
  });
}

/** Each requested scope must be covered, exactly as asked, by the original grant. */
function narrowedScope(requested: string | undefined, original: string): string {
  const wanted = splitScopes(requested);
  if (wanted.length === 0) return original;
  const covered = grantableScopes(wanted, splitScopes(original));
  const escalated = wanted.filter((s) => !covered.includes(s));
  if (escalated.length > 0) throw invalidScope(`Not part of the original grant: ${escalated.join(' ')}`);
  return wanted.join(' ');
}
