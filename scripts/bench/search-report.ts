import { type CellResult, fmt, percentile } from './latency-stats';
import type { PlanSummary } from './search-plans';
import type { BenchQuery } from './search-queries';

export interface Stats {
  p50: number;
  p95: number;
  perSecond: number;
  errors: number;
  firstError?: string;
}

export function stats(result: CellResult): Stats {
  const sorted = Float64Array.from(result.latencies).sort();
  return {
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    perSecond: result.operations / result.seconds,
    errors: result.errors,
    firstError: result.firstError,
  };
}

export function latencyStats(latencies: number[]): Stats {
  return stats({ operations: latencies.length, errors: 0, seconds: 1, latencies });
}

export interface CellRow {
  query: BenchQuery;
  concurrency: number;
  unsupported?: string;
  server?: Stats;
  raw?: Stats;
  /** Paging only: per page. */
  pages?: Stats;
  pagesPerWalk?: number;
}

export interface QueryReport {
  query: BenchQuery;
  matches: number;
  included: number;
  unsupported?: string;
  plan?: PlanSummary;
  planError?: string;
  cells: CellRow[];
}

export interface SizeReport {
  label: string;
  resources: Record<string, number>;
  queries: QueryReport[];
}

const PATIENT_SCOPED_P95_MS = 20;
const MAX_P95_GROWTH = 2;

export function printTableHeader(label: string): void {
  console.log(`\n=== ${label}: p50/p95 in ms; raw = the same SQL through pg, no HTTP/FHIR ===`);
  console.log(
    `${'query'.padEnd(28)}${'c'.padStart(3)}${'p50'.padStart(9)}${'p95'.padStart(9)}${'req/s'.padStart(9)}` +
      `${'raw p50'.padStart(9)}${'raw p95'.padStart(9)}${'×raw'.padStart(7)}  plan top / seq scan`
  );
}

export function printCell(report: QueryReport, cell: CellRow): void {
  const name = report.query.name.padEnd(28);
  const planText = report.plan ? `${report.plan.path}${report.plan.largeSeqScans.length ? '  SEQ SCAN!' : ''}` : (report.planError ?? '');
  if (cell.unsupported) {
    console.log(`${name}${String(cell.concurrency).padStart(3)}  unsupported: ${cell.unsupported.slice(0, 110)}`);
    return;
  }
  const s = cell.server!;
  const raw = cell.raw;
  const errors = s.errors ? `  (${s.errors} errors: ${s.firstError?.slice(0, 80)})` : '';
  console.log(
    `${name}${String(cell.concurrency).padStart(3)}${fmt(s.p50, 9)}${fmt(s.p95, 9)}${fmt(s.perSecond, 9)}` +
      `${fmt(raw?.p50 ?? NaN, 9)}${fmt(raw?.p95 ?? NaN, 9)}${fmt(raw ? s.p50 / raw.p50 : NaN, 7)}  ${cell.concurrency === 1 ? planText : ''}${errors}`
  );
  if (cell.pages) {
    console.log(`${'  per page'.padEnd(31)}${fmt(cell.pages.p50, 9)}${fmt(cell.pages.p95, 9)}   (${cell.pagesPerWalk} pages per walk)`);
  }
}

export function printPlans(size: SizeReport): void {
  console.log(`\n--- ${size.label}: plans (EXPLAIN ANALYZE of the match query as the server builds it) ---`);
  for (const q of size.queries) {
    const rows = q.unsupported ? 'unsupported' : `${q.matches} matches${q.included ? ` + ${q.included} included` : ''} on page 1`;
    console.log(`${q.query.name} — ${q.query.path}  [${rows}]`);
    if (q.plan) {
      console.log(`    ${q.plan.executionMs.toFixed(2)} ms: ${q.plan.path}`);
      console.log(`    scans: ${q.plan.scans.join('; ') || 'none'}`);
      for (const seq of q.plan.largeSeqScans) {
        console.log(`    !! sequential scan on a large table: ${seq}`);
      }
    } else if (q.planError) {
      console.log(`    plan: ${q.planError}`);
    }
  }
}

/** The targets of issue 3, checked against what was measured. */
export function printSummary(sizes: SizeReport[]): void {
  const small = sizes[0];
  const large = sizes[sizes.length - 1];
  console.log(`\n=== summary vs the targets (${large.label}${sizes.length > 1 ? ` vs ${small.label}` : ''}) ===`);
  console.log(`${'query'.padEnd(28)}${'c'.padStart(3)}${`p95 ${small.label}`.padStart(10)}${`p95 ${large.label}`.padStart(10)}${'growth'.padStart(8)}  verdict`);
  const failures: string[] = [];
  for (const q of large.queries) {
    const before = small.queries.find((s) => s.query.name === q.query.name);
    for (const cell of q.cells) {
      const name = q.query.name.padEnd(28);
      if (cell.unsupported || !cell.server) {
        console.log(`${name}${String(cell.concurrency).padStart(3)}  unsupported`);
        continue;
      }
      const p95 = cell.server.p95;
      const p95Before = before?.cells.find((c) => c.concurrency === cell.concurrency)?.server?.p95 ?? NaN;
      const growth = sizes.length > 1 ? p95 / p95Before : NaN;
      const verdicts: string[] = [];
      if (q.query.patientScoped) {
        const ok = p95 < PATIENT_SCOPED_P95_MS;
        verdicts.push(`p95 ${ok ? '<' : '≥'} ${PATIENT_SCOPED_P95_MS} ms ${ok ? 'ok' : 'MISSED'}`);
        if (!ok) failures.push(`${q.query.name} c=${cell.concurrency}: p95 ${p95.toFixed(1)} ms at ${large.label}`);
      }
      if (Number.isFinite(growth)) {
        const ok = growth <= MAX_P95_GROWTH;
        verdicts.push(`growth ${ok ? 'ok' : 'MISSED'}`);
        if (!ok) failures.push(`${q.query.name} c=${cell.concurrency}: p95 grew ${growth.toFixed(1)}×`);
      }
      console.log(`${name}${String(cell.concurrency).padStart(3)}${fmt(p95Before, 10)}${fmt(p95, 10)}${fmt(growth, 8)}  ${verdicts.join(', ')}`);
    }
  }
  const seqScans = sizes.flatMap((s) => s.queries.flatMap((q) => (q.plan?.largeSeqScans ?? []).map((t) => `${s.label} ${q.query.name}: ${t}`)));
  console.log(`\nsequential scans on tables over 10,000 rows: ${seqScans.length ? '' : 'none'}`);
  seqScans.forEach((line) => console.log(`  ${line}`));
  const unsupported = large.queries.filter((q) => q.unsupported).map((q) => q.query.name);
  console.log(`unsupported by the server: ${unsupported.length ? unsupported.join(', ') : 'none'}`);
  console.log(`targets missed: ${failures.length ? '' : 'none'}`);
  failures.forEach((line) => console.log(`  ${line}`));
}
