import type { Knex } from 'knex';

/** Each process purges at most this often; the deletes scan the small tables of live grants. */
const PURGE_INTERVAL_MS = 60_000;
/**
 * A used code is kept this long after it expired, so a late replay is still recognised
 * as one (and revokes what the code yielded) rather than answered as unknown.
 */
const CODE_KEEP_SECONDS = 3600;

const purgedAt = new WeakMap<Knex, number>();

/**
 * Deletes authorization codes and refresh tokens that can no longer be redeemed: the
 * token endpoint calls it, so the tables stay the size of the live grants. Refresh
 * tokens go at their expiry: a replay of an expired one is refused anyway.
 */
export async function purgeExpiredGrants(knex: Knex): Promise<void> {
  const last = purgedAt.get(knex) ?? 0;
  if (Date.now() - last < PURGE_INTERVAL_MS) return;
  purgedAt.set(knex, Date.now());
  await knex('auth_code').where('expires_at', '<', knex.raw(`now() - interval '${CODE_KEEP_SECONDS} seconds'`)).delete();
  await knex('auth_refresh_token').where('expires_at', '<', knex.fn.now()).delete();
}
