import type pg from 'pg';
import { runClosedLoop } from './closed-loop-load';
import type { KeepAliveClient } from './keep-alive-http';
import type { CellResult } from './latency-stats';
import type { SearchSql } from './search-plans';

const FHIR_BASE = '/fhir/';

interface SearchBundle {
  resourceType?: string;
  link?: { relation?: string; url?: string }[];
  entry?: { search?: { mode?: string }; resource?: { resourceType?: string; issue?: { severity?: string; diagnostics?: string }[] } }[];
}

/** What one request of a query answers, before it is timed. */
export interface Probe {
  /** Set when the server does not support the query: a 4xx/5xx, or a warning entry in the Bundle. */
  unsupported?: string;
  matches: number;
  included: number;
}

/**
 * One request first: a query the server answers with 400, or with a warning
 * OperationOutcome entry (a parameter ignored in lenient mode, so the result is wider
 * than asked), is "unsupported" and is not timed as if it worked.
 */
export async function probe(client: KeepAliveClient, path: string): Promise<Probe> {
  const res = await client.request('GET', FHIR_BASE + path);
  if (res.status !== 200) {
    return { unsupported: `HTTP ${res.status}: ${diagnostics(res.body)}`, matches: 0, included: 0 };
  }
  const bundle = JSON.parse(res.body) as SearchBundle;
  const entries = bundle.entry ?? [];
  const warnings = entries
    .filter((e) => e.search?.mode === 'outcome' || e.resource?.resourceType === 'OperationOutcome')
    .flatMap((e) => e.resource?.issue ?? [])
    .filter((i) => i.severity !== 'information');
  return {
    unsupported: warnings.length ? warnings.map((i) => i.diagnostics ?? i.severity).join('; ') : undefined,
    matches: entries.filter((e) => e.search?.mode === 'match').length,
    included: entries.filter((e) => e.search?.mode === 'include').length,
  };
}

function diagnostics(body: string): string {
  try {
    const outcome = JSON.parse(body) as { issue?: { diagnostics?: string }[] };
    return outcome.issue?.map((i) => i.diagnostics).join('; ') ?? body.slice(0, 200);
  } catch {
    return body.slice(0, 200);
  }
}

export interface TimingOptions {
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
  shouldStop: () => boolean;
}

/** GET the search over and over; anything but 200 counts as an error. */
export function timeSearch(client: KeepAliveClient, path: string, options: TimingOptions): Promise<CellResult> {
  return runClosedLoop(
    async () => {
      const res = await client.request('GET', FHIR_BASE + path);
      if (res.status !== 200) {
        throw new Error(`HTTP ${res.status}: ${diagnostics(res.body)}`);
      }
    },
    options.concurrency,
    options.seconds,
    options.warmupSeconds,
    options.shouldStop
  );
}

export interface PagingResult {
  /** One latency per complete walk (first page to `entries`). */
  walks: CellResult;
  /** One latency per page, measured walks only. */
  pages: number[];
  pagesPerWalk: number;
}

/** Walks: GET the first page, then follow `next` links until `entries` entries were read. */
export async function timePaging(client: KeepAliveClient, firstPage: string, entries: number, options: TimingOptions): Promise<PagingResult> {
  const pages: number[] = [];
  let pagesPerWalk = 0;
  const walks = await runClosedLoop(
    async (_worker, iteration) => {
      const measured = iteration >= 1_000_000;
      let path: string | undefined = FHIR_BASE + firstPage;
      let read = 0;
      let count = 0;
      while (path && read < entries) {
        const t0 = performance.now();
        const res = await client.request('GET', path);
        if (res.status !== 200) {
          throw new Error(`page ${count + 1}: HTTP ${res.status}: ${diagnostics(res.body)}`);
        }
        const bundle = JSON.parse(res.body) as SearchBundle;
        if (measured) {
          pages.push(performance.now() - t0);
        }
        count++;
        read += (bundle.entry ?? []).filter((e) => e.search?.mode === 'match').length;
        const next = bundle.link?.find((l) => l.relation === 'next')?.url;
        // The link is absolute with the server's public base; only its path matters here.
        path = next ? pathOf(next) : undefined;
      }
      if (read < entries) {
        throw new Error(`paging ended after ${read} entries (${count} pages), fewer than ${entries}`);
      }
      pagesPerWalk = count;
    },
    options.concurrency,
    options.seconds,
    options.warmupSeconds,
    options.shouldStop
  );
  return { walks, pages, pagesPerWalk };
}

/**
 * The path (below the FHIR base) of each page of one walk, as the server's `next` links
 * give them: the raw baseline then runs each page's own SQL (keyset cursors included).
 */
export async function pagePaths(client: KeepAliveClient, firstPage: string, entries: number): Promise<string[]> {
  const paths: string[] = [];
  let path: string | undefined = FHIR_BASE + firstPage;
  let read = 0;
  while (path && read < entries) {
    paths.push(path.slice(FHIR_BASE.length));
    const res = await client.request('GET', path);
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${diagnostics(res.body)}`);
    const bundle = JSON.parse(res.body) as SearchBundle;
    read += (bundle.entry ?? []).filter((e) => e.search?.mode === 'match').length;
    const next = bundle.link?.find((l) => l.relation === 'next')?.url;
    path = next ? pathOf(next) : undefined;
  }
  return paths;
}

function pathOf(url: string): string {
  const parsed = new URL(url, 'http://localhost');
  return parsed.pathname + parsed.search;
}

/** The same SQL straight through pg; for paging, `sqls` holds each page's query and one operation runs them all. */
export function timeRaw(pool: pg.Pool, sqls: SearchSql[], options: TimingOptions): Promise<CellResult> {
  return runClosedLoop(
    async () => {
      for (const { sql, bindings } of sqls) {
        await pool.query(sql, bindings);
      }
    },
    options.concurrency,
    options.seconds,
    options.warmupSeconds,
    options.shouldStop
  );
}
