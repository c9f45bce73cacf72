/**
 * Ingest throughput: the Synthea set loaded as a client would load it, next to raw
 * PostgreSQL COPY of the same resources.
 *
 * For each client concurrency (1, 2, 4): a fresh database, the server as a child process
 * on it (see server-process.ts), every Synthea Bundle posted through the load tool's
 * own code (scripts/load: the two information batches first, one at a time, then the
 * patient transactions, `concurrency` in flight), timed from the first request to the last
 * answer → resources/s and bundles/s, with the server's peak RSS; then the database
 * is dropped. The baseline: every resource of the same Bundles, as JSON, COPYed into a
 * bare `(id text PRIMARY KEY, content jsonb)` table in one COPY: what PostgreSQL alone
 * can take on this machine. Targets (issue 4): ≥ 2,000 resources/s with search
 * indexing on, and ≥ 15 % of raw COPY.
 *
 * Usage: npm run bench:ingest
 * Env: DATABASE_URL (admin connection; default postgres://postgres@127.0.0.1:5432/postgres),
 *      BENCH_BUNDLES (only the first N patient bundles, for a quick run; default all 120),
 *      BENCH_CONCURRENCY (default "1,2,4"), DATABASE_POOL_MAX (passed to the server).
 */
import os from 'node:os';
import path from 'node:path';
import { planLoad } from '../load/bundle-files';
import { endpoint } from '../load/fhir-endpoint';
import { loadBundles, type LoadSummary } from '../load/load-bundles';
import { progressOn } from '../load/load-progress';
import { BenchCleanup } from './bench-cleanup';
import { adminDatabaseUrl, createBenchDatabase } from './bench-database';
import { copyIntoBareTable, copyRowsOf } from './ingest-raw-copy';
import { ServerMemory } from './ingest-server-memory';
import { postgresCpuByPid, postgresCpuSince, processTreeCpuMs } from './process-cpu';
import { startServerProcess } from './server-process';
import { SYNTHEA_DIR, syntheaFiles } from './synthea-bundles';

const env = process.env;
const BUNDLES = env.BENCH_BUNDLES ? Number(env.BENCH_BUNDLES) : undefined;
const CONCURRENCY = (env.BENCH_CONCURRENCY || '1,2,4').split(',').map(Number);
const TARGET_PER_SECOND = 2000;
const TARGET_RATIO = 0.15;

interface Row {
  concurrency: number;
  summary: LoadSummary;
  /** Bytes; undefined where /proc cannot tell. */
  peakRss?: number;
  /** CPU µs per resource stored: the server process, PostgreSQL's processes (undefined where /proc cannot tell). */
  serverCpuUs?: number;
  postgresCpuUs?: number;
}

const cleanup = new BenchCleanup('stopping the server, dropping the benchmark database');

async function main(): Promise<void> {
  if (BUNDLES !== undefined && (!Number.isInteger(BUNDLES) || BUNDLES < 0)) {
    throw new Error(`BENCH_BUNDLES must be a whole number, got "${env.BENCH_BUNDLES}"`);
  }
  if (CONCURRENCY.some((c) => !Number.isInteger(c) || c < 1)) {
    throw new Error(`BENCH_CONCURRENCY must list whole numbers ≥ 1, got "${env.BENCH_CONCURRENCY}"`);
  }
  const synthea = syntheaFiles();
  const patients = synthea.patients.slice(0, BUNDLES);
  const plan = await planLoad([...synthea.information, ...patients].map((file) => path.join(SYNTHEA_DIR, file)));
  const files = [...plan.shared, ...plan.rest];
  if (plan.invalid.length > 0) {
    throw new Error(`unreadable Synthea files: ${plan.invalid.map((f) => `${f.name} (${f.reason})`).join(', ')}`);
  }
  console.log(
    `bench:ingest — ${files.length} Synthea bundles (${plan.shared.length} shared batches, ${plan.rest.length} patient transactions)` +
      ` at concurrency ${CONCURRENCY.join(', ')}; ${os.cpus().length} cores, Node ${process.version}`
  );

  console.log('\nraw baseline: preparing COPY rows…');
  const rows = await copyRowsOf(files.map((f) => f.path));
  let copyPostgresMs: number | undefined;
  let copyCompression = '';
  const copySeconds = await withDatabase(async (url) => {
    const copy = await copyIntoBareTable(url, rows);
    copyPostgresMs = copy.postgresCpuMs;
    copyCompression = copy.compression;
    return copy.seconds;
  });
  if (copySeconds === undefined) return;
  const copyPerSecond = rows.resources / copySeconds;
  console.log(
    `raw COPY: ${rows.resources.toLocaleString('en-US')} resources (${(rows.bytes / 1e6).toFixed(0)} MB of JSON, content compressed with ${copyCompression} as the server's) in ${copySeconds.toFixed(1)} s` +
      ` = ${Math.round(copyPerSecond).toLocaleString('en-US')} resources/s` +
      (copyPostgresMs === undefined ? '' : `; its backend's CPU ${((copyPostgresMs * 1000) / rows.resources).toFixed(0)} µs/resource`)
  );

  const results: Row[] = [];
  for (const concurrency of CONCURRENCY) {
    console.log(`\nconcurrency ${concurrency}: fresh database, starting the server (child process)…`);
    const row = await withDatabase(async (url) => {
      const server = await startServerProcess(url);
      const stopServer = (): Promise<void> => server.stop();
      cleanup.add(stopServer);
      try {
        const memory = ServerMemory.watch();
        const serverBefore = processTreeCpuMs(server.pid);
        const postgresBefore = postgresCpuByPid();
        const summary = await loadBundles(plan, {
          target: endpoint(`${server.url}/fhir`),
          concurrency,
          progress: progressOn(process.stderr, 15000),
        });
        const peakRss = memory?.stop();
        const serverAfter = processTreeCpuMs(server.pid);
        const postgresMs = postgresCpuSince(postgresBefore);
        if (server.exitStatus()) {
          throw new Error(`the server process ended during the load (${server.exitStatus()})`);
        }
        const perResource = (ms: number | undefined): number | undefined => (ms === undefined || summary.resources === 0 ? undefined : (ms * 1000) / summary.resources);
        const serverCpuUs = perResource(serverBefore !== undefined && serverAfter !== undefined ? serverAfter - serverBefore : undefined);
        return { concurrency, summary, peakRss, serverCpuUs, postgresCpuUs: perResource(postgresMs) };
      } finally {
        cleanup.remove(stopServer);
        await server.stop();
      }
    });
    if (row === undefined) return;
    results.push(row);
    printRow(row, copyPerSecond);
  }

  printTable(results, rows.resources, copyPerSecond);
  if (results.some((r) => r.summary.failed > 0)) {
    console.log('\nSome bundles failed (listed above): the figures above do not count them.');
    process.exitCode = 1;
  }
}

/** Runs `work` on a fresh database, dropped afterwards (also on Ctrl-C); undefined when interrupted. */
async function withDatabase<T>(work: (url: string) => Promise<T>): Promise<T | undefined> {
  const database = await createBenchDatabase(adminDatabaseUrl());
  const drop = (): Promise<void> => database.drop();
  cleanup.add(drop);
  try {
    const result = await work(database.url);
    return cleanup.interrupted ? undefined : result;
  } finally {
    cleanup.remove(drop);
    await drop();
  }
}

const int = (value: number): string => Math.round(value).toLocaleString('en-US');
const perSecond = (row: Row): number => row.summary.resources / row.summary.seconds;
const mb = (bytes: number | undefined): string => (bytes === undefined ? 'n/a' : `${Math.round(bytes / 2 ** 20)} MiB`);

function printRow(row: Row, copyPerSecond: number): void {
  const { summary } = row;
  console.log(
    `  ${summary.ok}/${summary.bundles} bundles ok, ${int(summary.resources)} resources in ${summary.seconds.toFixed(1)} s: ` +
      `${int(perSecond(row))} resources/s, ${(summary.ok / summary.seconds).toFixed(2)} bundles/s, ` +
      `${((100 * perSecond(row)) / copyPerSecond).toFixed(1)} % of raw COPY; server peak RSS ${mb(row.peakRss)}`
  );
  if (row.serverCpuUs !== undefined) {
    const postgres = row.postgresCpuUs === undefined ? '' : `, PostgreSQL ${row.postgresCpuUs.toFixed(0)} µs`;
    console.log(`  CPU per resource: server (with its workers) ${row.serverCpuUs.toFixed(0)} µs${postgres} (steadier than resources/s on a shared machine)`);
  }
  for (const failure of summary.failures.slice(0, 5)) {
    console.log(`  FAILED ${failure.name}: ${failure.reasons.join(' | ')}`);
  }
  if (summary.stoppedBecause) console.log(`  stopped early: ${summary.stoppedBecause}`);
}

function printTable(results: Row[], resources: number, copyPerSecond: number): void {
  console.log(`\nSynthea ingest, ${int(resources)} resources per run (raw COPY ${int(copyPerSecond)} resources/s)`);
  const header = ['clients', 'bundles ok', 'resources', 'seconds', 'resources/s', 'bundles/s', 'peak RSS', 'of COPY', `≥ ${int(TARGET_PER_SECOND)}/s`, `≥ ${TARGET_RATIO * 100} %`];
  const lines = results.map((row) => {
    const rate = perSecond(row);
    const ratio = rate / copyPerSecond;
    return [
      String(row.concurrency),
      `${row.summary.ok}/${row.summary.bundles}`,
      int(row.summary.resources),
      row.summary.seconds.toFixed(1),
      int(rate),
      (row.summary.ok / row.summary.seconds).toFixed(2),
      mb(row.peakRss),
      `${(100 * ratio).toFixed(1)} %`,
      rate >= TARGET_PER_SECOND ? 'yes' : 'no',
      ratio >= TARGET_RATIO ? 'yes' : 'no',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  for (const line of [header, ...lines]) {
    console.log(line.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
  }
  const best = results.reduce<Row | undefined>((a, b) => (a === undefined || perSecond(b) > perSecond(a) ? b : a), undefined);
  if (best) {
    const rate = perSecond(best);
    const met = rate >= TARGET_PER_SECOND && rate / copyPerSecond >= TARGET_RATIO;
    console.log(
      `\nBest: ${int(rate)} resources/s at ${best.concurrency} client(s), ${((100 * rate) / copyPerSecond).toFixed(1)} % of raw COPY: ` +
        `targets (≥ ${int(TARGET_PER_SECOND)}/s and ≥ ${TARGET_RATIO * 100} % of COPY) ${met ? 'met' : 'not met'}`
    );
  }
}

main()
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  })
  .finally(() => cleanup.run());
