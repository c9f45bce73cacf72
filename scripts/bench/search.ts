/**
 * Search latency at two data sizes (issue 3): the 120 Synthea patients, then BENCH_SCALE
 * times as many (copies with new ids), each query with 1 and 8 concurrent HTTP clients,
 * beside the same SQL run straight through pg, with the EXPLAIN plan of every query.
 *
 * Data goes in through the server's one write path, in-process (Repository.update,
 * i.e. PUT with the bundles' ids); the searches go over HTTP to the server in a child
 * process on a fresh database, dropped at the end (also on Ctrl-C) unless BENCH_KEEP_DB=1.
 *
 * Usage: npm run bench:search
 * Env: DATABASE_URL (admin connection; default postgres://postgres@127.0.0.1:5432/postgres),
 *      BENCH_SCALE (default 10; 1 = only the original size), BENCH_SECONDS (per cell, default 5),
 *      BENCH_WARMUP_SECONDS (default 1), BENCH_CONCURRENCY (default "1,8"),
 *      BENCH_LOAD_CONCURRENCY (writes in flight while loading, default 8), BENCH_KEEP_DB=1,
 *      BENCH_IDS (`server`, the default: the patient bundles' resources get new time-ordered
 *      ids, as a transaction load gives them; `bundle`: Synthea's own random uuids).
 */
import type { Knex } from 'knex';
import type pg from 'pg';
import { createKnex } from '../../server/storage/database';
import { prepareSchema } from '../../server/storage/prepare-schema';
import { Repository } from '../../server/storage/repository';
import { warmUpValidation } from '../../server/validation/validate-resource';
import { adminDatabaseUrl, checkpoint, createBenchDatabase } from './bench-database';
import { KeepAliveClient } from './keep-alive-http';
import { explain, rawPool, searchSql, type SearchSql } from './search-plans';
import { benchQueries, pickQueryValues, type QueryValues, tableSizes } from './search-queries';
import { type CellRow, latencyStats, printCell, printPlans, printSummary, printTableHeader, type QueryReport, type SizeReport, stats } from './search-report';
import { pagePaths, probe, timePaging, timeRaw, timeSearch, type TimingOptions } from './search-timing';
import { startServerProcess } from './server-process';
import { SyntheaLoader } from './synthea-loader';
import { BenchCleanup } from './bench-cleanup';

const env = process.env;
const SCALE = Math.max(1, Number(env.BENCH_SCALE || 10));
const SECONDS = Number(env.BENCH_SECONDS || 5);
const WARMUP = Number(env.BENCH_WARMUP_SECONDS ?? 1);
const CONCURRENCY = (env.BENCH_CONCURRENCY || '1,8').split(',').map(Number);
const LOAD_CONCURRENCY = Number(env.BENCH_LOAD_CONCURRENCY || 8);
const KEEP_DB = env.BENCH_KEEP_DB === '1';
const IDS = env.BENCH_IDS === 'bundle' ? 'bundle' : 'server';
const SIZE_TYPES = ['Patient', 'Observation', 'Encounter', 'Condition', 'MedicationRequest'];

const cleanup = new BenchCleanup(`stopping the server, ${KEEP_DB ? 'keeping' : 'dropping'} the benchmark database`);

async function main(): Promise<void> {
  console.log(`bench:search — scale 1× and ${SCALE}×, ${SECONDS} s per cell after ${WARMUP} s warm-up, concurrency ${CONCURRENCY.join(', ')}`);
  const database = await createBenchDatabase(adminDatabaseUrl());
  cleanup.add(async () => {
    if (KEEP_DB) {
      console.log(`kept database ${database.name} (${database.url})`);
    } else {
      await database.drop();
    }
  });
  console.log(`database ${database.name}`);
  const knex = createKnex(database.url, LOAD_CONCURRENCY + 2);
  cleanup.add(() => knex.destroy());
  await prepareSchema(knex);
  warmUpValidation();
  const loader = new SyntheaLoader(new Repository(knex, { searchDefaultCount: 20, searchMaxCount: 1000 }));

  const sizes: SizeReport[] = [];
  const steps = [
    { label: '1×', copies: [0], information: true },
    ...(SCALE > 1 ? [{ label: `${SCALE}×`, copies: Array.from({ length: SCALE - 1 }, (_, i) => i + 1), information: false }] : []),
  ];
  let values: QueryValues | undefined;
  for (const step of steps) {
    console.log(`\nloading ${step.label}: ${step.copies.length} × ${loader.patientBundleCount} patient bundles${step.information ? ' + hospital/practitioner bundles' : ''}, ${LOAD_CONCURRENCY} writes in flight (Repository.update, in-process; ${IDS === 'server' ? 'new time-ordered ids, as a transaction load gives them' : "Synthea's own ids"})`);
    const load = await loader.load({ ...step, ids: IDS, concurrency: LOAD_CONCURRENCY, log: (line) => console.log(line), shouldStop: () => cleanup.interrupted });
    if (cleanup.interrupted) {
      return;
    }
    console.log(
      `loaded ${load.resources} resources in ${load.seconds.toFixed(0)} s = ${load.perSecond.toFixed(0)} resources/s; ` +
        `${load.failed} failed, ${load.unresolvedReferences} unresolved references`
    );
    load.errors.forEach((e) => console.log(`  failed: ${e}`));
    // What autovacuum does soon after a bulk load (insert-triggered vacuum): statistics,
    // and the GIN pending lists merged into the index trees. Without it every GIN lookup
    // also scans up to 4 MB of pending entries (docs/architecture.md).
    const vacuumStart = performance.now();
    await knex.raw('VACUUM ANALYZE');
    console.log(`VACUUM ANALYZE: ${((performance.now() - vacuumStart) / 1000).toFixed(1)} s; ${await checkpoint(knex)}`);
    const resources = await tableSizes(knex, SIZE_TYPES);
    const bytes = (await knex.raw('SELECT pg_database_size(current_database())::float8 AS b')).rows[0].b as number;
    console.log(`rows: ${Object.entries(resources).map(([t, n]) => `${t} ${n}`).join(', ')}; database ${(bytes / 2 ** 20).toFixed(0)} MB`);
    values ??= await pickQueryValues(knex);
    console.log(
      `values: patient ${values.patientId} (${values.patientObservations} Observations, ${values.patientHeartRates} heart rates since 2015), identifier ${values.patientIdentifier}, ` +
        `family ${values.family}, quantity code ${values.quantityCode} (${values.quantityCodeCount} values > 100 at 1×)`
    );
    sizes.push({ label: step.label, resources, queries: await measureSize(step.label, database.url, knex, values) });
    if (cleanup.interrupted) {
      return;
    }
    printPlans(sizes[sizes.length - 1]);
  }
  printSummary(sizes);
}

async function measureSize(label: string, databaseUrl: string, knex: Knex, values: QueryValues): Promise<QueryReport[]> {
  console.log(`\nstarting the server (child process) on the ${label} database…`);
  const server = await startServerProcess(databaseUrl);
  const stopServer = (): Promise<void> => server.stop();
  cleanup.add(stopServer);
  const client = new KeepAliveClient(`${server.url}/`, Math.max(...CONCURRENCY));
  const pools = new Map<number, pg.Pool>(CONCURRENCY.map((c) => [c, rawPool(databaseUrl, c)]));
  const reports: QueryReport[] = [];
  try {
    printTableHeader(label);
    for (const query of benchQueries(values)) {
      const first = await probe(client, query.path);
      const report: QueryReport = { query, matches: first.matches, included: first.included, unsupported: first.unsupported, cells: [] };
      reports.push(report);
      let sqls: SearchSql[] = [];
      try {
        sqls = query.pageThrough
          ? (await pagePaths(client, query.path, query.pageThrough)).map((path) => searchSql(knex, path))
          : [searchSql(knex, query.path)];
        // The last page of a walk: its plan shows whether the cursor starts an index scan.
        report.plan = await explain(pools.get(CONCURRENCY[0])!, sqls[sqls.length - 1]);
      } catch (err) {
        report.planError = err instanceof Error ? err.message : String(err);
      }
      for (const concurrency of CONCURRENCY) {
        if (cleanup.interrupted) {
          return reports;
        }
        const cell: CellRow = { query, concurrency, unsupported: report.unsupported };
        report.cells.push(cell);
        if (!cell.unsupported) {
          const options: TimingOptions = { concurrency, seconds: SECONDS, warmupSeconds: WARMUP, shouldStop: () => cleanup.interrupted };
          if (query.pageThrough) {
            const paging = await timePaging(client, query.path, query.pageThrough, options);
            cell.server = stats(paging.walks);
            cell.pages = latencyStats(paging.pages);
            cell.pagesPerWalk = paging.pagesPerWalk;
          } else {
            cell.server = stats(await timeSearch(client, query.path, options));
          }
          if (sqls.length) {
            cell.raw = stats(await timeRaw(pools.get(concurrency)!, sqls, options));
          }
        }
        if (server.exitStatus()) {
          throw new Error(`the server process ended during ${query.name} (${server.exitStatus()})`);
        }
        printCell(report, cell);
      }
    }
  } finally {
    client.close();
    await Promise.all([...pools.values()].map((pool) => pool.end()));
    await stopServer();
    cleanup.remove(stopServer);
  }
  return reports;
}

main()
  .catch((err) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exitCode = 1;
  })
  .finally(() => cleanup.run());
