import type { Knex } from 'knex';
import pg from 'pg';
import { applySearch } from '../../server/search/build-search-sql';
import { parseSearchRequest, type SearchQuery } from '../../server/search/parse-search-request';

/** The SQL the server runs for a search's matches (not its `_include`s), with pg-style $n bindings. */
export interface SearchSql {
  sql: string;
  bindings: unknown[];
  /** Warnings from parsing (an ignored, i.e. unsupported, parameter). */
  warnings: string[];
}

/** Big enough that a sequential scan over it is a design problem, not a planner's choice. */
export const LARGE_TABLE_ROWS = 10000;

export interface PlanSummary {
  /** The chain of nodes from the top down to the first scan, e.g. "Limit › Sort › Bitmap Heap Scan". */
  path: string;
  /** Every scan node, with its relation and index. */
  scans: string[];
  /** Sequential scans on relations with more than LARGE_TABLE_ROWS rows. */
  largeSeqScans: string[];
  executionMs: number;
}

/**
 * Builds the match query exactly as `Repository.find` does: the same parser and SQL
 * builder, `SELECT content`, then OFFSET and LIMIT count+1 (the extra row says whether
 * a next page exists).
 */
export function searchSql(knex: Knex, path: string): SearchSql {
  const [resourceType, queryString = ''] = path.split('?');
  const query: SearchQuery = {};
  const params = new URLSearchParams(queryString);
  for (const key of new Set(params.keys())) {
    const values = params.getAll(key);
    query[key] = values.length === 1 ? values[0] : values;
  }
  const request = parseSearchRequest(resourceType, query, { strict: false, defaultCount: 20, maxCount: 1000 });
  const builder = applySearch(knex(resourceType).select('content'), request)
    .offset(request.offset)
    .limit(request.count + 1);
  const native = builder.toSQL().toNative();
  const warnings = request.warnings.map((w) => w.diagnostics ?? w.details?.text ?? 'warning');
  return { sql: native.sql, bindings: [...native.bindings], warnings };
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** EXPLAIN (ANALYZE, FORMAT JSON): ANALYZE so that the execution time is the real one. */
export async function explain(pool: pg.Pool, search: SearchSql): Promise<PlanSummary> {
  const result = await pool.query<{ 'QUERY PLAN': [{ Plan: PlanNode; 'Execution Time': number }] }>(
    `EXPLAIN (ANALYZE, FORMAT JSON) ${search.sql}`,
    search.bindings
  );
  const [{ Plan: top, 'Execution Time': executionMs }] = result.rows[0]['QUERY PLAN'];
  const chain: string[] = [];
  for (let node: PlanNode | undefined = top; node; node = node.Plans?.[0]) {
    chain.push(label(node));
    if (node['Relation Name']) {
      break;
    }
  }
  const scans: string[] = [];
  const largeSeqScans: string[] = [];
  const visit = async (node: PlanNode): Promise<void> => {
    if (node['Relation Name'] || node['Index Name']) {
      scans.push(label(node));
    }
    if (node['Node Type'] === 'Seq Scan' && node['Relation Name']) {
      const rows = await relationRows(pool, node['Relation Name']);
      if (rows > LARGE_TABLE_ROWS) {
        largeSeqScans.push(`${node['Relation Name']} (${rows} rows)`);
      }
    }
    for (const child of node.Plans ?? []) {
      await visit(child);
    }
  };
  await visit(top);
  return { path: chain.join(' › '), scans, largeSeqScans, executionMs };
}

function label(node: PlanNode): string {
  const on = node['Relation Name'] ? ` on ${node['Relation Name']}` : '';
  const using = node['Index Name'] ? ` using ${node['Index Name']}` : '';
  return `${node['Node Type']}${using}${on}`;
}

async function relationRows(pool: pg.Pool, relation: string): Promise<number> {
  const result = await pool.query<{ rows: number }>(
    `SELECT reltuples::float8 AS rows FROM pg_class WHERE oid = to_regclass(quote_ident($1))`,
    [relation]
  );
  return result.rows[0]?.rows ?? 0;
}

/**
 * The baseline: a pg Pool of `size` connections running the same SQL with the same
 * bindings (and parsing the JSONB rows, as pg does for the server) — no HTTP, no FHIR.
 */
export function rawPool(databaseUrl: string, size: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: size });
  // The final DROP DATABASE … WITH (FORCE) after a Ctrl-C must not crash the process.
  pool.on('error', () => undefined);
  return pool;
}
