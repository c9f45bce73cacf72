import type { Knex } from 'knex';

/**
 * An administrator revoking what a client was granted (`cli grant revoke`): every access
 * token issued to that client (for that user, or for anyone: user_id '') before
 * `revoked_before` is refused, whatever its jti. Its refresh tokens and codes are revoked
 * in their own tables.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS auth_grant_revocation (
      client_id text NOT NULL,
      user_id text NOT NULL DEFAULT '',
      revoked_before timestamptz NOT NULL,
      PRIMARY KEY (client_id, user_id)
    )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS auth_grant_revocation');
}
