import type { Knex } from 'knex';

/**
 * The access token issued together with each refresh token (its jti and expiry), so that
 * revoking a refresh family revokes the access tokens its grants and refreshes issued
 * (RFC 7009 §2.1: "SHOULD also invalidate all access tokens based on the same grant").
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE auth_refresh_token ADD COLUMN IF NOT EXISTS access_jti text, ADD COLUMN IF NOT EXISTS access_expires_at timestamptz');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE auth_refresh_token DROP COLUMN IF EXISTS access_jti, DROP COLUMN IF EXISTS access_expires_at');
}
