import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { freePort } from '../../server/core/free-port';
import { createKnex } from '../../server/storage/database';
import { withDatabase } from '../support/database-url';
import { fhirRequest } from '../support/fhir-client';
import { readHl7Example } from '../support/hl7-examples';
import { startTestServer } from '../support/test-server';
import { startArguments } from '../../scripts/start-command';

const ROOT = path.join(__dirname, '../..');

test('/healthz answers while the process lives and /readyz while its database answers', async () => {
  const server = await startTestServer();
  try {
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    await server.server.knex.destroy();
    const notReady = await fetch(`${server.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  } finally {
    await server.stop().catch(() => undefined);
  }
});

/** npm start's command (scripts/start-command.ts) on a database of its own, with `env`. */
async function startServerProcess(env: Record<string, string>) {
  const adminUrl = process.env.TEST_ADMIN_DATABASE_URL as string;
  const database = `fhir_test_${randomBytes(6).toString('hex')}`;
  const admin = createKnex(adminUrl, 1);
  await admin.raw(`CREATE DATABASE "${database}" TEMPLATE "${process.env.TEST_TEMPLATE_DATABASE}"`);
  const port = await freePort();
  const child = spawn(process.execPath, startArguments(), {
    cwd: ROOT,
    env: { ...process.env, AUTH_REQUIRED: 'false', ...env, PORT: String(port), DATABASE_URL: withDatabase(adminUrl, database), LOG_LEVEL: 'warn' },
    stdio: 'ignore',
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const cleanUp = async (): Promise<void> => {
    child.kill('SIGKILL');
    await admin.raw(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.destroy();
  };
  return { port, child, exited, cleanUp };
}

test("the server process (npm start's command) drains an in-flight request on SIGTERM and exits with 0", async () => {
  const { port, child, exited, cleanUp } = await startServerProcess({});
  try {
    const base = `http://127.0.0.1:${port}/fhir`;
    for (let i = 0; i < 200; i++) {
      const ok = await fetch(`${base}/metadata`).then((r) => r.status === 200, () => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // A 2 MB Bundle takes long enough to validate and store to be in flight at SIGTERM.
    const bundle = readHl7Example('Bundle-searchParams.json');
    const inFlight = fhirRequest('PUT', `${base}/Bundle/${bundle.id}`, { body: bundle });
    await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGTERM');
    const res = await inFlight;
    expect(res.status).toBe(201);
    expect(await exited).toBe(0);
    await expect(fetch(`${base}/metadata`)).rejects.toThrow();
  } finally {
    await cleanUp();
  }
});

test('with WORKERS=2 one primary runs two server processes on one port, restarts one that dies, and stops them all on SIGTERM', async () => {
  const { port, child, exited, cleanUp } = await startServerProcess({ WORKERS: '2' });
  const workers = (): number[] => {
    const { readFileSync, readdirSync } = require('node:fs') as typeof import('node:fs');
    const children = readdirSync(`/proc/${child.pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${child.pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number)
    );
    // Only the forked servers: tsx may run an esbuild helper process too.
    return children.filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('server/main.ts');
      } catch {
        return false;
      }
    });
  };
  const waitFor = async (condition: () => Promise<boolean> | boolean): Promise<void> => {
    for (let i = 0; i < 300 && !(await condition()); i++) await new Promise((r) => setTimeout(r, 100));
  };
  try {
    const base = `http://127.0.0.1:${port}/fhir`;
    const serving = async (): Promise<boolean> => fetch(`${base}/metadata`).then((r) => r.status === 200, () => false);
    await waitFor(async () => workers().length === 2 && (await serving()));
    const [first, second] = workers();
    expect(second).toBeDefined();

    // Writes through either process are one database: 20 creates on fresh connections all read back.
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await fhirRequest('POST', `${base}/Patient`, { body: { resourceType: 'Patient', active: true }, headers: { Connection: 'close' } });
      expect(res.status).toBe(201);
      ids.push(res.body.id);
    }
    for (const id of ids) expect((await fhirRequest('GET', `${base}/Patient/${id}`, { headers: { Connection: 'close' } })).status).toBe(200);

    // A worker that dies after running a while is replaced.
    await new Promise((r) => setTimeout(r, 5200));
    process.kill(first, 'SIGKILL');
    // Two readings apart: a process caught between fork and exec may show no command line for a moment.
    const replaced = (): boolean => workers().length === 2 && !workers().includes(first);
    await waitFor(async () => replaced() && (await serving()) && (await new Promise((r) => setTimeout(r, 500))) === undefined && replaced());
    expect(workers()).not.toContain(first);
    expect(workers()).toHaveLength(2);

    const running = workers();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    for (const pid of running) expect(() => process.kill(pid, 0)).toThrow();
  } finally {
    await cleanUp();
  }
}, 90000);
