/**
 * Patient/$everything latency (issue 4): the Synthea set loaded over HTTP as transaction
 * Bundles into a fresh database, then, for the largest patient (3,419 resources) and a
 * median one, BENCH_REQUESTS sequential `GET Patient/[id]/$everything` (the whole record
 * in one Bundle, the spec's default) and a walk of the largest record in pages of
 * BENCH_PAGE_COUNT. Each beside raw PostgreSQL doing the same reads on one pg
 * connection: one statement reading the contents of every compartment type by the same
 * compartment conditions, one reading the referenced resources by id (their ids given,
 * so the baseline does not discover them), planned once, no parallel workers, JSON
 * parsed by pg as the server's is.
 *
 * Usage: npm run bench:everything
 * Env: DATABASE_URL (admin connection; default postgres://postgres@127.0.0.1:5432/postgres),
 *      BENCH_REQUESTS (per cell, default 40), BENCH_WARMUP (requests, default 8),
 *      BENCH_PAGE_COUNT (default 250), BENCH_KEEP_DB=1 (keep the loaded database),
 *      BENCH_DATABASE=<name> (measure a database loaded by an earlier run instead).
 */
import type { Bundle } from '@medplum/fhirtypes';
import pg from 'pg';
import { applySearchFilters } from '../../server/search/build-search-sql';
import { patientRecordFilters, patientRecordTypes } from '../../server/search/patient-record';
import { createKnex } from '../../server/storage/database';
import { BenchCleanup } from './bench-cleanup';
import { adminDatabaseUrl, createBenchDatabase, withDatabase } from './bench-database';
import { KeepAliveClient } from './keep-alive-http';
import { percentile } from './latency-stats';
import { startServerProcess } from './server-process';
import { type BundleJson, readBundleText, syntheaFiles } from './synthea-bundles';
import { loadSyntheaOverHttp } from './synthea-transaction-load';

const env = process.env;
const REQUESTS = Number(env.BENCH_REQUESTS || 40);
const WARMUP = Number(env.BENCH_WARMUP || 8);
const PAGE_COUNT = Number(env.BENCH_PAGE_COUNT || 250);
const KEEP_DB = env.BENCH_KEEP_DB === '1';
const REUSE_DATABASE = env.BENCH_DATABASE;

const cleanup = new BenchCleanup(`stopping the server, ${KEEP_DB ? 'keeping' : 'dropping'} the benchmark database`);

interface Figures {
  p50: number;
  p95: number;
}

function figures(latencies: number[]): Figures {
  const sorted = Float64Array.from(latencies).sort();
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95) };
}

async function main(): Promise<void> {
  console.log(`bench:everything — ${REQUESTS} requests per cell after ${WARMUP} warm-up, pages of ${PAGE_COUNT}`);
  const databaseUrl = REUSE_DATABASE ? withDatabase(adminDatabaseUrl(), REUSE_DATABASE) : await freshDatabase();
  const server = await startServerProcess(databaseUrl);
  cleanup.add(() => server.stop());
  const knex = createKnex(databaseUrl, 2);
  cleanup.add(() => knex.destroy());
  if (REUSE_DATABASE) {
    console.log(`database ${REUSE_DATABASE} (loaded before)`);
  } else {
    console.log('loading the Synthea bundles over HTTP (POST /fhir, 2 at a time)…');
    const loaded = await loadSyntheaOverHttp(`${server.url}/fhir`, 2);
    const resources = [...loaded.information, ...loaded.patients].reduce((n, b) => n + b.stored.size, 0);
    console.log(`loaded ${resources} resources in ${loaded.seconds.toFixed(0)} s`);
    // What autovacuum does soon after a bulk load: statistics, GIN pending lists merged.
    await knex.raw('VACUUM ANALYZE');
  }

  // The largest and the median patient bundle, found by the Synthea identifier of their Patient.
  const bySize = syntheaFiles()
    .patients.map((file) => ({ file, entries: (JSON.parse(readBundleText(file)) as BundleJson).entry ?? [] }))
    .sort((a, b) => a.entries.length - b.entries.length);
  const cases = await Promise.all(
    [
      { label: 'largest', bundle: bySize[bySize.length - 1] },
      { label: 'median', bundle: bySize[bySize.length >> 1] },
    ].map(async ({ label, bundle }) => ({ label, patientId: await storedPatientId(server.url, bundle.entries), bundleEntries: bundle.entries.length }))
  );

  const client = new KeepAliveClient(`${server.url}/`, 1);
  const raw = new pg.Client({ connectionString: databaseUrl });
  await raw.connect();
  cleanup.add(async () => {
    client.close();
    await raw.end();
  });
  await raw.query('SET max_parallel_workers_per_gather = 0; SET plan_cache_mode = force_generic_plan');

  console.log('\n                       entries     MB   server p50   p95 ms   raw pg p50   p95 ms   ratio p50   p95');
  for (const c of cases) {
    if (cleanup.interrupted) return;
    const path = `/fhir/Patient/${c.patientId}/$everything`;
    const first = JSON.parse((await client.expect([200], 'GET', path)).body) as Bundle;
    const entries = first.entry ?? [];
    const referenced = new Map<string, string[]>();
    for (const e of entries.filter((e) => e.search?.mode === 'include')) {
      const type = e.resource!.resourceType;
      referenced.set(type, [...(referenced.get(type) ?? []), e.resource!.id as string]);
    }
    const rawReads = rawStatements(knex, c.patientId, referenced);
    let bytes = 0;
    const serverTimes = await timed(async () => {
      bytes = (await client.expect([200], 'GET', path)).body.length;
    });
    let rawRows = 0;
    const rawTimes = await timed(async () => {
      rawRows = 0;
      for (const [i, statement] of rawReads.entries()) rawRows += (await raw.query({ name: `everything-raw-${c.label}-${i}`, text: statement.sql, values: statement.bindings })).rowCount ?? 0;
    });
    if (rawRows !== entries.length) throw new Error(`raw reads returned ${rawRows} rows, the server ${entries.length} entries`);
    row(`${c.label} (${c.bundleEntries} in bundle)`, entries.length, bytes, figures(serverTimes), figures(rawTimes));
  }

  // Paging the largest record: each page is its own request (keys, contents, and at the end the references).
  const largest = cases[0];
  const pageTimes: number[] = [];
  const walkTimes = await timed(async () => {
    let next: string | undefined = `/fhir/Patient/${largest.patientId}/$everything?_count=${PAGE_COUNT}`;
    while (next) {
      const started = performance.now();
      const page = JSON.parse((await client.expect([200], 'GET', next)).body) as Bundle;
      pageTimes.push(performance.now() - started);
      const url = page.link?.find((l) => l.relation === 'next')?.url;
      next = url ? url.slice(url.indexOf('/fhir/')) : undefined;
    }
  }, Math.max(2, Math.round(REQUESTS / 4)), 1);
  const page = figures(pageTimes);
  const walk = figures(walkTimes);
  console.log(
    `\nlargest record in pages of ${PAGE_COUNT}: page p50 ${page.p50.toFixed(1)} ms, p95 ${page.p95.toFixed(1)} ms; ` +
      `whole walk p50 ${walk.p50.toFixed(0)} ms, p95 ${walk.p95.toFixed(0)} ms`
  );
}

/**
 * The reads of a record as plain SQL: every compartment type's rows by the same
 * conditions the server uses (built by the same search module, then run by pg alone),
 * and the referenced resources by their ids.
 */
async function freshDatabase(): Promise<string> {
  const database = await createBenchDatabase(adminDatabaseUrl());
  cleanup.add(async () => (KEEP_DB ? console.log(`kept database ${database.name}; BENCH_DATABASE=${database.name} measures it again`) : database.drop()));
  console.log(`database ${database.name}`);
  return database.url;
}

async function storedPatientId(serverUrl: string, entries: NonNullable<BundleJson['entry']>): Promise<string> {
  const patient = entries.find((e) => e.resource?.resourceType === 'Patient')?.resource as { identifier?: { system?: string; value?: string }[] };
  const identifier = patient.identifier?.find((i) => i.system === 'https://github.com/synthetichealth/synthea');
  const url = `${serverUrl}/fhir/Patient?identifier=${encodeURIComponent(`${identifier?.system}|${identifier?.value}`)}&_elements=id`;
  const found = (await (await fetch(url)).json()) as Bundle;
  if (found.entry?.length !== 1) throw new Error(`${url}: ${found.entry?.length ?? 0} patients`);
  return found.entry[0].resource?.id as string;
}

function rawStatements(knex: ReturnType<typeof createKnex>, patientId: string, referenced: Map<string, string[]>): { sql: string; bindings: unknown[] }[] {
  const compartment = patientRecordTypes().map((type) => {
    const branch = knex(type).select('content');
    applySearchFilters(branch, { resourceType: type, filters: patientRecordFilters(type, patientId), sort: [], count: 0, offset: 0, total: 'none', warnings: [] });
    return branch;
  });
  const references = [...referenced].map(([type, ids]) => knex(type).select('content').where('deleted', false).whereRaw('id = ANY(?::text[])', [ids]));
  return [knex.unionAll(compartment, true), ...(references.length ? [knex.unionAll(references, true)] : [])].map((q) => {
    const { sql, bindings } = q.toSQL().toNative();
    return { sql, bindings: bindings as unknown[] };
  });
}

async function timed(work: () => Promise<void>, requests = REQUESTS, warmup = WARMUP): Promise<number[]> {
  for (let i = 0; i < warmup && !cleanup.interrupted; i++) await work();
  const latencies: number[] = [];
  for (let i = 0; i < requests && !cleanup.interrupted; i++) {
    const started = performance.now();
    await work();
    latencies.push(performance.now() - started);
  }
  return latencies;
}

function row(label: string, entries: number, bytes: number, server: Figures, raw: Figures): void {
  console.log(
    `${label.padEnd(22)} ${String(entries).padStart(7)} ${(bytes / 2 ** 20).toFixed(1).padStart(6)} ` +
      `${server.p50.toFixed(1).padStart(12)} ${server.p95.toFixed(1).padStart(8)} ` +
      `${raw.p50.toFixed(1).padStart(12)} ${raw.p95.toFixed(1).padStart(8)} ` +
      `${(server.p50 / raw.p50).toFixed(1).padStart(10)}× ${(server.p95 / raw.p95).toFixed(1).padStart(4)}×`
  );
}

main()
  .catch((err) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exitCode = 1;
  })
  .finally(() => cleanup.run());
