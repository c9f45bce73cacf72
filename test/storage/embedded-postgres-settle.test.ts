import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

/**
 * A supervisor that restarts the server at once can start it while the embedded
 * PostgreSQL of the server before is still stopping (alive, refusing connections). The
 * start must wait for that one to finish, not fail on its locked folder.
 */
const ROOT = path.join(__dirname, '../..');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-settle-'));
// As root the cluster runs as the postgres user, which must be able to reach its folder.
fs.chmodSync(root, 0o777);
const dataDir = path.join(root, 'postgres');
const children: ChildProcess[] = [];

interface Child {
  process: ChildProcess;
  output: () => string;
}

function startChild(): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/embedded-postgres-child.ts', dataDir, 'settle'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { process: child, output: () => output };
}

async function waitFor(child: Child, pattern: RegExp, ms: number): Promise<RegExpMatchArray> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; ) {
    const match = child.output().match(pattern);
    if (match) return match;
    if (child.process.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no ${pattern} in the child's output:\n${child.output()}`);
}

function postmasterPid(): number {
  return Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

afterAll(async () => {
  for (const child of children.reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20000))]);
  }
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(`${dataDir}.log`, { force: true });
}, 60000);

test('a start waits for the PostgreSQL that is still stopping on its folder, then starts its own', async () => {
  const first = startChild();
  await waitFor(first, /READY /, 90000);
  const firstPid = postmasterPid();
  // Stopped, it neither answers nor exits: as one busy shutting down looks to a new start.
  process.kill(firstPid, 'SIGSTOP');
  const second = startChild();
  try {
    await waitFor(second, /LOG waiting for the embedded PostgreSQL/, 30000);
  } finally {
    // Now it shuts down (fast shutdown), as the server before would have had it.
    process.kill(firstPid, 'SIGINT');
    process.kill(firstPid, 'SIGCONT');
  }
  const [, url] = await waitFor(second, /READY (\S+)/, 90000);
  expect(postmasterPid()).not.toBe(firstPid);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1);
  await client.end();
}, 240000);
