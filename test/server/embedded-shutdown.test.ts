import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../server/core/free-port';
import { startArguments } from '../../scripts/start-command';

/**
 * `npm start` with no DATABASE_URL runs its own PostgreSQL. Ctrl-C (SIGINT) and process
 * supervisors (SIGTERM) signal the whole process group: the database must outlive the
 * requests being drained, and stop only after them.
 */
const ROOT = path.join(__dirname, '../..');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-embedded-'));
// As root the cluster runs as the postgres user, which must be able to reach its folder.
fs.chmodSync(dataDir, 0o777);
const postmasterPid = path.join(dataDir, 'postgres', 'postmaster.pid');

interface Started {
  child: ChildProcess;
  base: string;
  exited: Promise<number | null>;
}

/** npm start's command with no DATABASE_URL, in a process group of its own, as a terminal or a supervisor starts it. */
function spawnEmbeddedServer(port: number, workers = '1'): ChildProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', AUTH_REQUIRED: 'false', LOG_LEVEL: 'warn', WORKERS: workers };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  const child = spawn(process.execPath, startArguments(), { cwd: ROOT, env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  // Kept for the failure message of a start that does not come up.
  child.stderr?.on('data', (chunk: Buffer) => (stderrOf.set(child, `${stderrOf.get(child) ?? ''}${chunk.toString()}`.slice(-4000))));
  return child;
}

const stderrOf = new WeakMap<ChildProcess, string>();

async function startEmbeddedServer(workers = '1'): Promise<Started> {
  const port = await freePort();
  const child = spawnEmbeddedServer(port, workers);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}/fhir`;
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  for (let i = 0; i < 1200 && exitCode === undefined; i++) {
    if (await fetch(`${base}/metadata`).then((r) => r.ok, () => false)) return { child, base, exited };
    await new Promise((r) => setTimeout(r, 100));
  }
  const how = exitCode === undefined ? 'did not answer within 120 s' : `exited (code ${exitCode}) before answering`;
  throw new Error(`the server with an embedded PostgreSQL ${how}; its stderr:\n${stderrOf.get(child) ?? ''}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function databasePid(): number | undefined {
  try {
    return Number(fs.readFileSync(postmasterPid, 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
}

function transactionOfPatients(n: number): string {
  const entry = Array.from({ length: n }, (_, i) => ({
    request: { method: 'POST', url: 'Patient' },
    resource: { resourceType: 'Patient', name: [{ family: `Drain${i}` }] },
  }));
  return JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry });
}

/**
 * How many Patients one transaction should create to take about `seconds` here (at most
 * BUNDLE_MAX_ENTRIES): a CI machine answered four 1,000-Patient transactions within the
 * second before the signal, which left the drain untested.
 */
async function patientsForSeconds(base: string, seconds: number): Promise<number> {
  const probe = 500;
  let perPatientMs = Infinity;
  // Twice: the first runs on a cold server, and too slow a probe would size the load too small.
  for (let i = 0; i < 2; i++) {
    const started = performance.now();
    const res = await fetch(base, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: transactionOfPatients(probe) });
    expect(res.status).toBe(200);
    perPatientMs = Math.min(perPatientMs, (performance.now() - started) / probe);
  }
  return Math.min(10000, Math.max(1000, Math.ceil((seconds * 1000) / perPatientMs)));
}

let running: Started | undefined;

afterAll(async () => {
  if (running?.child.pid) {
    try {
      process.kill(-running.child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const pid = databasePid();
  if (pid && alive(pid)) process.kill(pid, 'SIGINT');
  for (let i = 0; i < 100 && pid && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  fs.rmSync(dataDir, { recursive: true, force: true });
}, 60000);

test('a server killed outright leaves its database running, and the next start uses that database', async () => {
  running = await startEmbeddedServer();
  const created = await fetch(`${running.base}/Patient`, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Survivor' }] }),
  });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  const pid = databasePid() as number;

  running.child.kill('SIGKILL');
  await running.exited;
  expect(alive(pid)).toBe(true);

  running = await startEmbeddedServer();
  expect(databasePid()).toBe(pid);
  expect((await fetch(`${running.base}/Patient/${id}`)).status).toBe(200);
}, 180000);

async function stopRunning(): Promise<void> {
  if (!running) return;
  process.kill(-(running.child.pid as number), 'SIGTERM');
  await running.exited;
  running = undefined;
}

test.each(['SIGINT', 'SIGTERM'] as const)(
  '%s to the whole process group: requests in flight are answered, then the server and its database exit cleanly',
  async (signal) => {
    await stopRunning();
    running = await startEmbeddedServer();
    const { child, base, exited } = running;
    const pid = databasePid() as number;
    // Sized from this machine's speed: each of the four must still run well after the signal.
    const body = transactionOfPatients(await patientsForSeconds(base, 3));
    const inFlight = Array.from({ length: 4 }, () =>
      fetch(base, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body }).then((r) => ({ status: r.status, at: performance.now() }))
    );
    // Long enough for the four connections to be accepted (a connection the server has not
    // accepted when it stops listening is refused, as it should be); not for the creates.
    await new Promise((r) => setTimeout(r, 1000));
    const signalled = performance.now();
    process.kill(-(child.pid as number), signal);
    const answers = await Promise.all(inFlight);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    // The drain was tested only if something was still being answered at the signal.
    expect(Math.max(...answers.map((a) => a.at))).toBeGreaterThan(signalled);
    expect(await exited).toBe(0);
    running = undefined;
    expect(alive(pid)).toBe(false);
    expect(fs.existsSync(postmasterPid)).toBe(false);
  },
  180000
);

test('with WORKERS=2, a SIGTERM to the group (each worker gets it twice: from the group and from its primary) stops the workers, then the database', async () => {
  await stopRunning();
  running = await startEmbeddedServer('2');
  const { child, base, exited } = running;
  const pid = databasePid() as number;
  expect((await fetch(`${base}/Patient?_count=1`)).status).toBe(200);
  process.kill(-(child.pid as number), 'SIGTERM');
  expect(await exited).toBe(0);
  running = undefined;
  expect(alive(pid)).toBe(false);
  expect(fs.existsSync(postmasterPid)).toBe(false);
}, 180000);

test('a start that fails after the database is up (its port is taken) stops the database it started', async () => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
  const port = (taken.address() as net.AddressInfo).port;
  try {
    const child = spawnEmbeddedServer(port);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).not.toBe(0);
    const pid = databasePid();
    expect(pid === undefined || !alive(pid)).toBe(true);
  } finally {
    taken.close();
  }
}, 180000);
