import type { Knex } from 'knex';
import { findClient } from '../../server/auth/client-store';
import { findUserByUsername } from '../../server/auth/user-store';
import { CliError } from './client-add';

/** `grant revoke` as commander hands it over. */
export interface GrantRevokeOptions {
  client: string;
  username?: string;
}

/**
 * `cli grant revoke --client ID [--username U]`: what the client was granted, for that
 * user or for everyone, ends now (an administrator's, or a patient's request, carried
 * out): its refresh tokens are revoked, its codes not yet exchanged are dropped, and every
 * access token it was issued until now is refused by every process within a second
 * (auth_grant_revocation, revoked-tokens.ts). The client stays registered: a new
 * authorization, with a new consent, starts afresh.
 */
export async function revokeGrant(knex: Knex, options: GrantRevokeOptions): Promise<string[]> {
  const client = await findClient(knex, options.client);
  if (!client) throw new CliError(`no client '${options.client}'`);
  const user = options.username === undefined ? undefined : await findUserByUsername(knex, options.username);
  if (options.username !== undefined && !user) throw new CliError(`no user '${options.username}'`);
  const whose = <T extends Knex.QueryBuilder>(query: T): T => (user ? query.where({ client_id: client.id, user_id: user.id }) : query.where({ client_id: client.id })) as T;
  return knex.transaction(async (tx) => {
    const refreshTokens = await whose(tx('auth_refresh_token')).whereNull('revoked_at').update({ revoked_at: tx.fn.now() });
    const codes = await whose(tx('auth_code')).whereNull('used_at').delete();
    await tx.raw(
      `INSERT INTO auth_grant_revocation (client_id, user_id, revoked_before) VALUES (?, ?, now())
       ON CONFLICT (client_id, user_id) DO UPDATE SET revoked_before = excluded.revoked_before`,
      [client.id, user?.id ?? '']
    );
    const who = user ? `user ${options.username}` : 'every user';
    return [
      `revoked what client ${client.id} was granted for ${who}: ${refreshTokens} refresh tokens, ${codes} authorization codes not yet exchanged;`,
      `its access tokens issued until now are refused from now on (within a second on every server process)`,
    ];
  });
}
