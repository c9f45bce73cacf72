import type { AuthContext } from './auth-exchange';

/**
 * How stale this process's view of auth_revoked_token may be. A revocation committed at
 * time t is refused by every verification that starts after t + REFRESH_MS (plus the
 * duration of one small query); in the revoking process it is refused at once.
 */
export const REVOCATION_STALENESS_MS = 1000;

export interface RevokedTokens {
  isRevoked(jti: string): Promise<boolean>;
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

/**
 * The set of revoked, not yet expired access tokens, reloaded lazily: a verification
 * that finds it older than REVOCATION_STALENESS_MS waits for one reload (shared by
 * concurrent requests), so an idle process runs no queries and needs no timer to stop.
 * The whole live set is read each time: rows disappear with their token's exp (≤ the
 * access token lifetime), so it holds only the tokens revoked in the last few minutes.
 */
function createRevokedTokens(context: AuthContext): RevokedTokens {
  const { knex } = context;
  let revoked = new Map<string, number>();
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
        // Revocations are never undone: what we knew stays until its token expires.
        const next = new Map(rows.map((r) => [r.jti, r.expires_at.getTime()]));
        for (const [jti, expiresAt] of revoked) if (expiresAt > startedAt) next.set(jti, expiresAt);
        revoked = next;
        loadedAt = startedAt;
        if (startedAt - purgedAt > 60_000) {
          purgedAt = startedAt;
          await knex('auth_revoked_token').where('expires_at', '<', knex.fn.now()).delete();
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

  return {
    async isRevoked(jti) {
      if (Date.now() - loadedAt > REVOCATION_STALENESS_MS) await reload();
      return revoked.has(jti);
    },
    revoke: (jti, expiresAtSeconds) => revokeAll([{ jti, expiresAtSeconds }]),
    revokeAll,
  };
}
