import type { AuthContext } from './auth-exchange';

/**
 * How stale this process's view of auth_revoked_token and auth_grant_revocation may be.
 * A revocation committed at time t is refused by every verification that starts after
 * t + REFRESH_MS (plus the duration of one small query); in the revoking process it is
 * refused at once.
 */
export const REVOCATION_STALENESS_MS = 1000;

/** What decides whether an access token is revoked: its own id, and whom it was issued to, when. */
export interface IssuedToken {
  jti: string;
  clientId: string;
  /** The user the token was issued for; undefined for a client's own (client_credentials) token. */
  userId?: string;
  /** `iat`, epoch seconds. */
  issuedAt: number;
}

export interface RevokedTokens {
  isRevoked(token: IssuedToken): Promise<boolean>;
  /** Records the revocation (until the token's own exp) for every process. */
  revoke(jti: string, expiresAtSeconds: number): Promise<void>;
  /** The same for several tokens, in one statement. */
  revokeAll(tokens: readonly { jti: string; expiresAtSeconds: number }[]): Promise<void>;
}

const byContext = new WeakMap<AuthContext, RevokedTokens>();

export function revokedTokensFor(context: AuthContext): RevokedTokens {
  let revoked = byContext.get(context);
  if (!revoked) {
    revoked = createRevokedTokens(context);
    byContext.set(context, revoked);
  }
  return revoked;
}

/** Grant revocations older than this cannot matter: every access token they refuse has expired (ACCESS_TOKEN_SECONDS is at most a day). */
const GRANT_REVOCATION_KEPT_MS = 2 * 86_400_000;

/** The key of a grant revocation: a client for one user, or (user '') for everyone. */
const grantKey = (clientId: string, userId: string): string => `${clientId}\u0000${userId}`;

/**
 * The set of revoked, not yet expired access tokens, and the grants an administrator
 * revoked (`cli grant revoke`: tokens of a client, for a user or for anyone, issued
 * before a time), reloaded lazily: a verification that finds them older than
 * REVOCATION_STALENESS_MS waits for one reload (shared by concurrent requests), so an
 * idle process runs no queries and needs no timer to stop. The whole live set is read
 * each time: rows disappear once no token they refuse can still be valid.
 */
function createRevokedTokens(context: AuthContext): RevokedTokens {
  const { knex } = context;
  let revoked = new Map<string, number>();
  let grants = new Map<string, number>();
  let loadedAt = 0;
  let loading: Promise<void> | undefined;
  let purgedAt = 0;

  const reload = (): Promise<void> => {
    loading ??= (async () => {
      try {
        const startedAt = Date.now();
        const rows: { jti: string; expires_at: Date }[] = await knex('auth_revoked_token')
          .select('jti', 'expires_at')
          .where('expires_at', '>', knex.fn.now());
        const grantRows: { client_id: string; user_id: string; revoked_before: Date }[] = await knex('auth_grant_revocation').select('client_id', 'user_id', 'revoked_before');
        // Revocations are never undone: what we knew stays until its token expires.
        const next = new Map(rows.map((r) => [r.jti, r.expires_at.getTime()]));
        for (const [jti, expiresAt] of revoked) if (expiresAt > startedAt) next.set(jti, expiresAt);
        revoked = next;
        grants = new Map(grantRows.map((r) => [grantKey(r.client_id, r.user_id), r.revoked_before.getTime()]));
        loadedAt = startedAt;
        if (startedAt - purgedAt > 60_000) {
          purgedAt = startedAt;
          await knex('auth_revoked_token').where('expires_at', '<', knex.fn.now()).delete();
          await knex('auth_grant_revocation').where('revoked_before', '<', new Date(startedAt - GRANT_REVOCATION_KEPT_MS)).delete();
        }
      } finally {
        loading = undefined;
      }
    })();
    return loading;
  };

  const revokeAll = async (tokens: readonly { jti: string; expiresAtSeconds: number }[]): Promise<void> => {
    if (tokens.length === 0) return;
    const rows = tokens.map((t) => ({ jti: t.jti, expires_at: new Date(t.expiresAtSeconds * 1000) }));
    await knex('auth_revoked_token').insert(rows).onConflict('jti').ignore();
    for (const r of rows) revoked.set(r.jti, r.expires_at.getTime());
  };

  /** Issued in or before the second of a revocation of its grant: `iat` has whole seconds only. */
  const grantRevoked = (token: IssuedToken): boolean => {
    const issuedMs = token.issuedAt * 1000;
    const before = [grants.get(grantKey(token.clientId, '')), token.userId ? grants.get(grantKey(token.clientId, token.userId)) : undefined];
    return before.some((at) => at !== undefined && issuedMs <= at);
  };

  return {
    async isRevoked(token) {
      if (Date.now() - loadedAt > REVOCATION_STALENESS_MS) await reload();
      return revoked.has(token.jti) || grantRevoked(token);
    },
    revoke: (jti, expiresAtSeconds) => revokeAll([{ jti, expiresAtSeconds }]),
    revokeAll,
  };
}
