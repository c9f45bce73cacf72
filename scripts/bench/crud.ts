/**
 * CRUD throughput of the FHIR server next to raw PostgreSQL doing the same work.
 *
 * create, read and update of Patient and Observation (the HL7 R4 examples) with 1, 8
 * and 32 concurrent HTTP clients (requests/s, p50, p99), beside a pg Pool of the same
 * size inserting, selecting and updating the same JSON in a bare `(id, content jsonb)`
 * table; each ratio is server/raw. Also validation ms per resource, in-process.
 *
 * The server runs as a child process (see server-process.ts for why) on a fresh
 * database created on DATABASE_URL's server and dropped at the end (also on Ctrl-C).
 *
 * Usage: npm run bench:crud
 * Env: DATABASE_URL (admin connection; default postgres://postgres@127.0.0.1:5432/postgres),
 *      BENCH_SECONDS (per cell, default 5), BENCH_WARMUP_SECONDS (default 1),
 *      BENCH_CONCURRENCY (default "1,8,32"), BENCH_TYPES (default "Patient,Observation"),
 *      BENCH_SYNTHEA_BUNDLES (bundles for the validation figures, default 6),
 *      BENCH_AUTH_CONCURRENCY (the authorization-overhead table, default "1,8"),
 *      BENCH_AUTH_ROUNDS (rounds per cell of that table, median kept, default 3),
 *      DATABASE_POOL_MAX (passed to the server),
 *      BENCH_CEILING=0 skips the last table: a bare node:http + pg server
 *      (bare-http-pg-server.ts) doing the same create and read, i.e. what any HTTP server in
 *      Node reaches here before doing FHIR work, as a ratio to the same raw cells.
 */
import { adminDatabaseUrl, createBenchDatabase } from './bench-database';
import { runClosedLoop, type Operation } from './closed-loop-load';
import { forCreate, hl7Examples, syntheaResources, withUpdateMark, type FhirResource } from './example-resources';
import { KeepAliveClient } from './keep-alive-http';
import { figures, fmt, type CellFigures } from './latency-stats';
import { RawJsonbStore } from './raw-postgres';
import { startServerProcess, type ServerProcess } from './server-process';
import { measureValidation, printValidation, type ValidationFigures } from './validation-cost';
import { BenchCleanup } from './bench-cleanup';
import { authOverhead } from './crud-auth';

const env = process.env;
const SECONDS = Number(env.BENCH_SECONDS || 5);
const WARMUP = Number(env.BENCH_WARMUP_SECONDS ?? 1);
const CONCURRENCY = (env.BENCH_CONCURRENCY || '1,8,32').split(',').map(Number);
const AUTH_CONCURRENCY = (env.BENCH_AUTH_CONCURRENCY || '1,8').split(',').map(Number);
const TYPES = (env.BENCH_TYPES || 'Patient,Observation').split(',');
const SYNTHEA_BUNDLES = Number(env.BENCH_SYNTHEA_BUNDLES || 6);
/** Resources each update cell cycles through, split between the workers. */
const UPDATE_POOL = 480;
const OPS = ['create', 'read', 'update'] as const;
type Op = (typeof OPS)[number];

interface Row {
  op: Op;
  type: string;
  concurrency: number;
  server: CellFigures;
  raw: CellFigures;
  ratio: number;
}

const cleanup = new BenchCleanup('stopping, dropping the benchmark database');

async function main(): Promise<void> {
  console.log(`bench:crud — ${SECONDS} s per cell after ${WARMUP} s warm-up; concurrency ${CONCURRENCY.join(', ')}`);
  const validation = validationFigures();
  printValidation(validation);

  const database = await createBenchDatabase(adminDatabaseUrl());
  cleanup.add(() => database.drop());
  console.log(`\ndatabase ${database.name}; starting the server (child process)…`);
  const server = await startServerProcess(database.url);
  cleanup.add(() => server.stop());
  const raw = new RawJsonbStore(database.url);
  cleanup.add(() => raw.close());

  const rows: Row[] = [];
  printHeader();
  for (const type of TYPES) {
    await raw.createTable(type);
    const bodies = await acceptedExamples(server, type);
    const ids = { server: [] as string[], raw: [] as string[] };
    for (const op of OPS) {
      for (const concurrency of CONCURRENCY) {
        const serverResult = await serverCell(server, type, op, concurrency, bodies, ids.server);
        if (cleanup.interrupted) {
          return;
        }
        if (server.exitStatus()) {
          throw new Error(`the server process ended during ${op} ${type} c=${concurrency} (${server.exitStatus()})`);
        }
        await raw.resize(concurrency);
        const rawResult = await rawCell(raw, type, op, concurrency, bodies, ids.raw);
        if (cleanup.interrupted) {
          return;
        }
        const row = { op, type, concurrency, server: serverResult, raw: rawResult, ratio: serverResult.perSecond / rawResult.perSecond };
        rows.push(row);
        printRow(row);
      }
    }
  }
  printSummary(rows, validation);
  await authOverhead(server, database.url, raw, { seconds: SECONDS, warmup: WARMUP, concurrency: AUTH_CONCURRENCY, stop: stop(server) });
  if (env.BENCH_CEILING !== '0' && !cleanup.interrupted) {
    // One server at a time on the two cores.
    await server.stop();
    await httpCeiling(database.url, rows);
  }
}

/**
 * The same create and read cells against bare-http-pg-server.ts, each beside the raw
 * figure of its row above: the share of raw PostgreSQL that HTTP and JSON alone leave.
 */
async function httpCeiling(databaseUrl: string, rows: Row[]): Promise<void> {
  const bare = await startServerProcess(databaseUrl, {}, 'scripts/bench/bare-http-pg-server.ts');
  cleanup.add(() => bare.stop());
  console.log('\nCeiling: a bare node:http + pg server (one prepared statement per request, nothing else) on the same cells');
  const header = `${'op'.padEnd(7)}${'type'.padEnd(12)}${'c'.padStart(3)} ${'bare/s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'raw/s'.padStart(9)} ${'bare/raw'.padStart(9)} ${'server/bare'.padStart(12)}`;
  console.log(`${header}\n${'-'.repeat(header.length)}`);
  const ratios: { op: string; concurrency: number; ratio: number }[] = [];
  for (const type of TYPES) {
    const bodies = await acceptedExamples(bare, type);
    const ids: string[] = [];
    for (const op of ['create', 'read'] as const) {
      for (const concurrency of CONCURRENCY) {
        const row = rows.find((r) => r.op === op && r.type === type && r.concurrency === concurrency);
        if (!row) continue;
        const cell = await serverCell(bare, type, op, concurrency, bodies, ids);
        if (cleanup.interrupted) return;
        const ratio = cell.perSecond / row.raw.perSecond;
        ratios.push({ op, concurrency, ratio });
        console.log(
          `${op.padEnd(7)}${type.padEnd(12)}${String(concurrency).padStart(3)} ${fmt(cell.perSecond, 9)} ${fmt(cell.p50)} ${fmt(row.raw.perSecond, 9)}` +
            ` ${(ratio * 100).toFixed(0).padStart(8)}% ${((row.server.perSecond / cell.perSecond) * 100).toFixed(0).padStart(11)}%`
        );
      }
    }
  }
  for (const op of ['create', 'read']) {
    const perConcurrency = CONCURRENCY.map((concurrency) => {
      const values = ratios.filter((r) => r.op === op && r.concurrency === concurrency).map((r) => Math.round(r.ratio * 100));
      return `${Math.min(...values)}–${Math.max(...values)}% at c=${concurrency}`;
    });
    console.log(`  bare HTTP ${op} / raw ${op === 'read' ? 'select' : 'insert'}: ${perConcurrency.join(', ')}`);
  }
  await bare.stop();
}

function validationFigures(): ValidationFigures[] {
  const rows = TYPES.map((type) => measureValidation(`HL7 ${type} examples`, hl7Examples(type)));
  rows.push(measureValidation(`Synthea (${SYNTHEA_BUNDLES} bundles, all types)`, syntheaResources(SYNTHEA_BUNDLES), 2));
  return rows;
}

/** The examples (without id and meta) that the server creates; the rest are reported and skipped. */
async function acceptedExamples(server: ServerProcess, type: string): Promise<string[]> {
  const client = new KeepAliveClient(server.url, 1);
  const accepted: string[] = [];
  const examples = hl7Examples(type).map(forCreate);
  for (const example of examples) {
    const body = JSON.stringify(example);
    const res = await client.request('POST', `/fhir/${type}`, body);
    if (res.status === 201) {
      accepted.push(body);
    } else {
      console.error(`  (skipping a ${type} example the server answers ${res.status}: ${res.body.slice(0, 200)})`);
    }
  }
  client.close();
  if (accepted.length === 0) {
    throw new Error(`the server accepted none of the ${examples.length} ${type} examples`);
  }
  console.log(`  ${type}: ${accepted.length} of ${examples.length} HL7 examples, ${Math.round(average(accepted.map((b) => b.length)))} bytes on average`);
  return accepted;
}

async function serverCell(server: ServerProcess, type: string, op: Op, concurrency: number, bodies: string[], ids: string[]): Promise<CellFigures> {
  const client = new KeepAliveClient(server.url, concurrency);
  const idPattern = new RegExp(`/${type}/([^/]+)/_history/`);
  let operation: Operation;
  if (op === 'create') {
    let next = 0;
    operation = async () => {
      const res = await client.expect([201], 'POST', `/fhir/${type}`, bodies[next++ % bodies.length]);
      const id = idPattern.exec(String(res.headers.location))?.[1];
      if (!id) {
        throw new Error(`create: no id in Location "${res.headers.location}"`);
      }
      remember(ids, id);
    };
  } else if (op === 'read') {
    operation = async (worker, i) => {
      await client.expect([200], 'GET', `/fhir/${type}/${ids[(worker + i * concurrency) % ids.length]}`);
    };
  } else {
    // Worker w only ever touches positions ≡ w (mod concurrency): no two updates of one
    // resource run at once, as with independent clients editing their own records.
    const current = await Promise.all(
      updatePool(ids, concurrency).map(async (id) => JSON.parse((await client.expect([200], 'GET', `/fhir/${type}/${id}`)).body) as FhirResource)
    );
    operation = async (worker, i) => {
      const resource = current[(worker + i * concurrency) % current.length];
      await client.expect([200], 'PUT', `/fhir/${type}/${resource.id}`, JSON.stringify(withUpdateMark(resource, i)));
    };
  }
  try {
    return report(await runClosedLoop(operation, concurrency, SECONDS, WARMUP, stop(server)), `server ${op} ${type} c=${concurrency}`);
  } finally {
    client.close();
  }
}

async function rawCell(raw: RawJsonbStore, type: string, op: Op, concurrency: number, bodies: string[], ids: string[]): Promise<CellFigures> {
  let operation: Operation;
  if (op === 'create') {
    let next = 0;
    operation = async () => {
      remember(ids, await raw.insert(type, bodies[next++ % bodies.length]));
    };
  } else if (op === 'read') {
    operation = async (worker, i) => {
      await raw.select(type, ids[(worker + i * concurrency) % ids.length]);
    };
  } else {
    const pool = updatePool(ids, concurrency);
    const current = await Promise.all(pool.map(async (id) => JSON.parse(await raw.select(type, id)) as FhirResource));
    operation = async (worker, i) => {
      const index = (worker + i * concurrency) % pool.length;
      await raw.update(type, pool[index], JSON.stringify(withUpdateMark(current[index], i)));
    };
  }
  return report(await runClosedLoop(operation, concurrency, SECONDS, WARMUP, stop()), `raw ${op} ${type} c=${concurrency}`);
}

/** Ids kept for the read and update cells (enough to spread reads over many pages). */
function remember(ids: string[], id: string): void {
  if (ids.length < 20000) {
    ids.push(id);
  }
}

/** A multiple of `concurrency` ids, so that the modulo split above holds. */
function updatePool(ids: string[], concurrency: number): string[] {
  const size = Math.floor(Math.min(ids.length, UPDATE_POOL) / concurrency) * concurrency;
  if (size === 0) {
    throw new Error(`update with ${concurrency} clients needs at least ${concurrency} created resources, have ${ids.length}`);
  }
  return ids.slice(0, size);
}

function stop(server?: ServerProcess): () => boolean {
  return () => cleanup.interrupted || server?.exitStatus() !== undefined;
}

function report(result: Parameters<typeof figures>[0], label: string): CellFigures {
  if (result.errors > 0) {
    console.error(`  ${label}: ${result.errors} errors, first: ${result.firstError}`);
  }
  return figures(result);
}

function average(values: number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / Math.max(1, values.length);
}

const HEADER =
  `${'op'.padEnd(7)}${'type'.padEnd(12)}${'c'.padStart(3)} ${'server/s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}` +
  ` ${'raw/s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'ratio'.padStart(7)} ${'errors'.padStart(7)}`;

function printHeader(): void {
  console.log(`\n${HEADER}\n${'-'.repeat(HEADER.length)}`);
}

function printRow(row: Row): void {
  console.log(
    `${row.op.padEnd(7)}${row.type.padEnd(12)}${String(row.concurrency).padStart(3)} ${fmt(row.server.perSecond, 9)} ${fmt(row.server.p50)} ${fmt(row.server.p99)}` +
      ` ${fmt(row.raw.perSecond, 9)} ${fmt(row.raw.p50)} ${fmt(row.raw.p99)} ${(row.ratio * 100).toFixed(0).padStart(6)}% ${String(row.server.errors + row.raw.errors).padStart(7)}`
  );
}

function printSummary(rows: Row[], validation: ValidationFigures[]): void {
  console.log('\nAll cells (server req/s and latency vs raw PostgreSQL; ratio = server/raw)');
  printHeader();
  for (const op of OPS) {
    rows.filter((row) => row.op === op).forEach(printRow);
  }
  console.log('\nTargets (2-core machine)');
  const targets: [Op, number, string][] = [
    ['create', 0.3, 'create ≥ 30% of the raw insert rate'],
    ['read', 0.5, 'read by id ≥ 50% of the raw select rate'],
  ];
  for (const [op, target, text] of targets) {
    const cells = rows.filter((row) => row.op === op);
    const met = cells.filter((row) => row.ratio >= target);
    const worst = cells.reduce((a, b) => (b.ratio < a.ratio ? b : a), cells[0]);
    console.log(
      `  ${text.padEnd(42)} ${met.length === cells.length ? 'MET    ' : 'NOT MET'} ${met.length}/${cells.length} cells;` +
        (worst ? ` lowest ${(worst.ratio * 100).toFixed(0)}% (${worst.type}, c=${worst.concurrency})` : '')
    );
  }
  const worstValidation = validation.reduce((a, b) => (b.mean > a.mean ? b : a));
  console.log(
    `  ${'validation ≤ 0.2 ms per typical resource'.padEnd(42)} ${worstValidation.mean <= 0.2 ? 'MET    ' : 'NOT MET'} ` +
      `highest mean ${worstValidation.mean.toFixed(3)} ms (${worstValidation.label})`
  );
}

main()
  .then(() => cleanup.run(), async (err) => {
    if (!cleanup.interrupted) {
      console.error(err instanceof Error ? err.stack : err);
    }
    await cleanup.run();
    process.exitCode = 1;
  })
  .then(() => {
    if (!cleanup.interrupted) {
      process.exit(process.exitCode ?? 0);
    }
  });
