import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { freePort } from '../../server/core/free-port';
import { createKnex } from '../../server/storage/database';
import { prepareSchema } from '../../server/storage/prepare-schema';
import { adminDatabaseUrl, createBenchDatabase } from './bench-database';
import { SHARED_DATA_DIR } from '../shared-data-dir';
import { processCpuMs } from './process-cpu';

/**
 * `npm run bench:cpu`: CPU time the server process spends per request (user + kernel,
 * from /proc), for read by id and create of a Patient at 8 clients — a figure that other
 * load on the machine barely moves, unlike requests/s. Beside it, the same for a bare
 * node:http + pg server doing the same SELECT / JSON echo: the floor FHIR logic adds to.
 * The server runs with its defaults (audit on) and again with AUDIT=false.
 */
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 3000);
const CONCURRENCY = 8;

function cpuMs(pid: number): { total: number; kernel: number } {
  const cpu = processCpuMs(pid);
  if (!cpu) throw new Error(`no CPU reading for process ${pid} (it ended, or there is no /proc)`);
  return cpu;
}

async function startServer(main: string, env: Record<string, string>): Promise<{ child: ChildProcess; base: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', main], {
    // Without a token and rate limits, as the other benchmarks measure the server.
    env: { ...process.env, AUTH_REQUIRED: 'false', RATE_LIMIT: 'false', ...env, PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}/fhir`;
  for (let i = 0; i < 300; i++) {
    const up = await fetch(`${base}/metadata`).then((r) => r.ok, () => false);
    if (up) return { child, base };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${main} did not start`);
}

function client(base: string): (method: string, path: string, body?: string) => Promise<string> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  return (method, path, body) =>
    new Promise((resolve, reject) => {
      const headers = body ? { 'content-type': 'application/fhir+json' } : {};
      const req = http.request(`${base}${path}`, { method, agent, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => ((res.statusCode ?? 500) < 300 ? resolve(text) : reject(new Error(`${res.statusCode} ${text}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
}

async function measure(pid: number, work: () => Promise<unknown>): Promise<{ us: number; kernelUs: number; perSecond: number }> {
  const run = async (n: number): Promise<void> => {
    let started = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (started++ < n) await work(); }));
  };
  await run(Math.ceil(REQUESTS / 5));
  const before = cpuMs(pid);
  const t0 = performance.now();
  await run(REQUESTS);
  const seconds = (performance.now() - t0) / 1000;
  const after = cpuMs(pid);
  return {
    us: ((after.total - before.total) / REQUESTS) * 1000,
    kernelUs: ((after.kernel - before.kernel) / REQUESTS) * 1000,
    perSecond: REQUESTS / seconds,
  };
}

async function main(): Promise<void> {
  const db = await createBenchDatabase(adminDatabaseUrl());
  const knex = createKnex(db.url, 2);
  await prepareSchema(knex);
  await knex.destroy();
  const example = JSON.parse(readFileSync(`${SHARED_DATA_DIR}/hl7-r4-examples/Patient-example.json`, 'utf8'));
  delete example.id;
  delete example.meta;
  const body = JSON.stringify(example);
  const rows: string[] = [];
  try {
    const servers: [string, string, Record<string, string>][] = [
      ['fhir server', 'server/main.ts', {}],
      ['  AUDIT=false', 'server/main.ts', { AUDIT: 'false' }],
      ['bare http + pg', 'scripts/bench/bare-http-pg-server.ts', {}],
    ];
    for (const [label, main, env] of servers) {
      const { child, base } = await startServer(main, { DATABASE_URL: db.url, ...env });
      try {
        const request = client(base);
        const id = (JSON.parse(await request('POST', '/Patient', body)) as { id: string }).id;
        const read = await measure(child.pid as number, () => request('GET', `/Patient/${id}`));
        const create = await measure(child.pid as number, () => request('POST', '/Patient', body));
        for (const [op, m] of [['read', read], ['create', create]] as const) {
          rows.push(`${label.padEnd(16)} ${op.padEnd(7)} ${m.us.toFixed(0).padStart(6)} µs CPU/request (kernel ${m.kernelUs.toFixed(0)})  ${m.perSecond.toFixed(0).padStart(6)} req/s`);
        }
      } finally {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    }
  } finally {
    await db.drop();
  }
  console.log(`server CPU per request, ${REQUESTS} requests at ${CONCURRENCY} clients (load average now ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]})`);
  console.log(rows.join('\n'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
