import type { Knex } from 'knex';
import { type IndexColumn, indexColumns, requiredExtensions } from '../search/index-columns';
import { pairDefinitions, pairValuesSql } from '../search/pair-columns';
import { paramColumn } from '../search/column-names';
import { resourceTypes } from '../validation/structure-definitions';
import { contentSearchEnabled } from '../search/full-text-settings';
import { indexedParams } from '../search/supported-parameters';
import { reindexRows } from './reindex-rows';
import { compressWithLz4, keepRowsInline } from './toast-settings';
import { type Db, fittingName } from './sql';

/**
 * Brings every resource table's search columns and indexes in line with the search
 * module's definitions (official and, once loaded, custom ones). Idempotent and cheap
 * when nothing changed (one catalogue query), so it runs at every start after the
 * migrations.
 */
export async function syncIndexColumns(knex: Knex): Promise<number> {
  for (const extension of requiredExtensions()) {
    await knex.raw(`CREATE EXTENSION IF NOT EXISTS ${extension}`);
  }
  const existing = await knex.raw<{ rows: { table_name: string; column_name: string }[] }>(
    `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()`
  );
  const have = new Set(existing.rows.map((r) => `${r.table_name}.${r.column_name}`));
  const indexes = await knex.raw<{ rows: { indexname: string; indexdef: string }[] }>(
    `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()`
  );
  const haveIndex = new Map(indexes.rows.map((r) => [r.indexname, r.indexdef]));
  let changes = 0;
  for (const type of resourceTypes) {
    const statements: string[] = [];
    const added = new Set<string>();
    if (!contentSearchEnabled() && have.has(`${type}.${CONTENT_COLUMN}`)) {
      // SEARCH_CONTENT was turned off: the words would go stale, so they go, and turning it
      // on again fills the column afresh (backfillOfficialColumns).
      statements.push(`ALTER TABLE "${type}" DROP COLUMN "${CONTENT_COLUMN}"`);
    }
    const columns = indexColumns(type);
    for (const column of columns) {
      if (!have.has(`${type}.${column.name}`)) {
        statements.push(`ALTER TABLE "${type}" ADD COLUMN IF NOT EXISTS "${column.name}" ${column.sqlType}`);
        statements.push(...pairBackfill(type, column.name));
        added.add(column.name);
      }
      const indexName = indexNameFor(type, column.name);
      const definition = haveIndex.get(indexName);
      if (column.indexMethod === 'none') continue;
      if (definition !== undefined && isPartial(column) && !definition.includes(' WHERE ')) {
        // Made before indexes skipped NULLs: replace it.
        statements.push(`DROP INDEX "${indexName}"`);
        statements.push(createIndexStatement(type, column));
      } else if (definition === undefined) {
        statements.push(createIndexStatement(type, column));
      }
    }
    if (statements.length > 0) {
      // One round trip and one transaction per table: a fresh database has ~2,900 of these.
      await knex.transaction((tx) => tx.raw(statements.join(';\n')));
      changes += statements.length;
    }
    // A table none of whose columns existed is new (the migrations just made it): no rows to fill.
    if (added.size > 0 && added.size < columns.length) changes += await backfillOfficialColumns(knex, type, added);
  }
  return changes + (await compressWithLz4(knex, [...resourceTypes, 'resource_history'])) + (await keepRowsInline(knex, resourceTypes));
}

/**
 * A pair column added to a table that already holds rows is filled from its two source
 * columns, before its index is built (one pass over the table, once, at the start that adds it).
 */
function pairBackfill(type: string, column: string): string[] {
  const pair = pairDefinitions(type).find((p) => p.column === column);
  if (!pair) return [];
  return [
    `UPDATE "${type}" SET "${column}" = ${pairValuesSql(pair)} ` +
      `WHERE "${paramColumn(pair.reference)}" IS NOT NULL AND "${paramColumn(pair.token)}" IS NOT NULL`,
  ];
}

/**
 * An official parameter's columns added to a table that already holds rows (a server
 * version that indexes a parameter the previous one did not, such as `_text`) are filled
 * from each live row's content, with the write path's extraction, once, at the start that
 * adds them: otherwise the parameter would miss every resource written before. Custom
 * parameters are filled by their reindex Task instead (jobs/reindex-job.ts), which reports
 * progress. Returns the number of rows visited.
 */
async function backfillOfficialColumns(knex: Knex, type: string, added: ReadonlySet<string>): Promise<number> {
  const params = [...indexedParams(type).values()].filter(
    (param) => !param.def.custom && param.handler.columns(param).some((column) => added.has(column.name))
  );
  if (params.length === 0) return 0;
  const any = await knex.raw<{ rows: unknown[] }>(`SELECT 1 FROM "${type}" WHERE NOT deleted LIMIT 1`);
  if (any.rows.length === 0) return 0;
  // One pass over the table for all of them: each row is read and extracted once.
  let visited = 0;
  for (let after = ''; ; ) {
    const batch = await knex.transaction((tx) => reindexRows(tx, type, params, after, BACKFILL_BATCH));
    visited += batch.visited;
    if (batch.lastId === undefined) break;
    after = batch.lastId;
  }
  return visited;
}

const BACKFILL_BATCH = 500;

const CONTENT_COLUMN = paramColumn('_content');

/**
 * `<table>_<column>_idx`, which fits PostgreSQL's 63 bytes for every official column; a
 * longer one (a custom parameter's long code on a long type name) keeps a readable
 * prefix and ends in a hash of the whole name, so that two never truncate to the same.
 */
export function indexNameFor(type: string, column: string): string {
  return fittingName(`${type}_${column}_idx`);
}

/**
 * GIN and GiST indexes leave out rows where the column is NULL — most rows for most
 * parameters (an Observation fills about 12 of its 60 columns) — which makes every insert
 * much cheaper. Searches lose nothing: their operators (&&, @>, @?, LIKE, <@) are strict,
 * so PostgreSQL proves `IS NOT NULL` from them and uses the index; `:missing=true` could
 * not use these index types anyway. B-trees stay whole: they also serve `_sort`.
 */
function isPartial(column: IndexColumn): boolean {
  return column.indexMethod === 'gin' || column.indexMethod === 'gist';
}

export function createIndexStatement(type: string, column: IndexColumn): string {
  const target = column.indexExpression ?? `"${column.name}"`;
  const where = isPartial(column) ? ` WHERE "${column.name}" IS NOT NULL` : '';
  return `CREATE INDEX IF NOT EXISTS "${indexNameFor(type, column.name)}" ON "${type}" USING ${column.indexMethod} (${target})${where}`;
}

/** How format_type() spells the SQL types the search module declares. */
const FORMATTED_TYPE: Record<string, string> = { timestamptz: 'timestamp with time zone' };

/**
 * Adds one parameter's columns and indexes to one table, inside the caller's transaction
 * (which holds the schema lock). A column that exists with another SQL type is left
 * over from a deleted custom parameter with the same code and another type: it is
 * dropped and added again, since nothing else can own a name in the `__<code>` space.
 * Returns how many statements it ran.
 */
export async function addIndexColumns(db: Db, type: string, columns: readonly IndexColumn[]): Promise<number> {
  if (columns.length === 0) return 0;
  const names = columns.map((c) => c.name);
  const existing = await db.raw<{ rows: { name: string; sql_type: string }[] }>(
    `SELECT attname AS name, format_type(atttypid, atttypmod) AS sql_type FROM pg_attribute
      WHERE attrelid = ?::regclass AND attnum > 0 AND NOT attisdropped AND attname = ANY(?)`,
    [`"${type}"`, names]
  );
  const types = new Map(existing.rows.map((r) => [r.name, r.sql_type]));
  const statements: string[] = [];
  for (const column of columns) {
    const have = types.get(column.name);
    const want = FORMATTED_TYPE[column.sqlType] ?? column.sqlType;
    if (have !== undefined && have !== want) statements.push(`ALTER TABLE "${type}" DROP COLUMN "${column.name}"`);
    if (have !== want) statements.push(`ALTER TABLE "${type}" ADD COLUMN "${column.name}" ${column.sqlType}`);
    if (column.indexMethod !== 'none') statements.push(createIndexStatement(type, column));
  }
  await db.raw(statements.join(';\n'));
  return statements.length + (await compressWithLz4(db, [type]));
}
