import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The server DATABASE_URL points at (or the machine's default), used as admin connection. */
export function adminDatabaseUrl(env: Record<string, string | undefined> = process.env): string {
  return env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A fresh, uniquely named database on the admin connection's server; `drop` removes it. */
export async function createBenchDatabase(adminUrl: string): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `fhir_bench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  await withAdmin(adminUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  let dropped = false;
  return {
    name,
    url: withDatabase(adminUrl, name),
    async drop() {
      if (!dropped) {
        dropped = true;
        // FORCE (PostgreSQL 13+) ends sessions a killed server may have left behind.
        await withAdmin(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
      }
    },
  };
}

async function withAdmin<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * CHECKPOINT before a timed part that follows a bulk load, as pgbench-style runs do: the
 * load dirtied gigabytes of pages that would otherwise be written back during the timing
 * (a checkpoint spreads its writes over minutes), which steady operation never has to
 * pay at once. Says so when the role may not checkpoint (not superuser or pg_checkpoint).
 */
export async function checkpoint(db: { raw(sql: string): PromiseLike<unknown> }): Promise<string> {
  const started = performance.now();
  try {
    await db.raw('CHECKPOINT');
    return `CHECKPOINT ${((performance.now() - started) / 1000).toFixed(1)} s`;
  } catch (err) {
    return `no CHECKPOINT (${(err as Error).message})`;
  }
}
