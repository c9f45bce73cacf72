import type { Knex } from 'knex';
import type { AuthContext } from './auth-exchange';
import { revokedTokensFor } from './revoked-tokens';

/** A refresh-token row (auth_refresh_token). */
export interface RefreshTokenRow {
  token_hash: string;
  family_id: string;
  client_id: string;
  user_id: string | null;
  scope: string;
  patient: string | null;
  encounter: string | null;
  need_patient_banner: boolean;
  created_at: Date;
  expires_at: Date;
  used_at: Date | null;
  revoked_at: Date | null;
  /** The access token issued with this refresh token (migration 015; null before it). */
  access_jti: string | null;
  access_expires_at: Date | null;
}

export async function findRefreshToken(knex: Knex, tokenHash: string): Promise<RefreshTokenRow | undefined> {
  return knex('auth_refresh_token').where({ token_hash: tokenHash }).first();
}

/** Usable: neither rotated away, nor revoked, nor expired. */
export function isRefreshTokenActive(row: RefreshTokenRow): boolean {
  return !row.used_at && !row.revoked_at && row.expires_at.getTime() > Date.now();
}

/**
 * Revokes every refresh token of a family (one authorization and its rotations): what
 * a replayed code or refresh token, or a revocation request, asks for (RFC 6749 §4.1.2,
 * §10.4; OAuth 2.0 Security BCP §4.14.2), and the access tokens issued with them that
 * have not expired yet (RFC 7009 §2.1), for every process (revoked-tokens.ts).
 */
export async function revokeRefreshFamily(context: AuthContext, familyId: string): Promise<void> {
  const { knex } = context;
  await knex('auth_refresh_token').where({ family_id: familyId }).whereNull('revoked_at').update({ revoked_at: knex.fn.now() });
  const live: { access_jti: string; access_expires_at: Date }[] = await knex('auth_refresh_token')
    .select('access_jti', 'access_expires_at')
    .where({ family_id: familyId })
    .whereNotNull('access_jti')
    .where('access_expires_at', '>', knex.fn.now());
  await revokedTokensFor(context).revokeAll(live.map((r) => ({ jti: r.access_jti, expiresAtSeconds: Math.ceil(r.access_expires_at.getTime() / 1000) })));
}
