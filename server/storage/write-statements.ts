import { createHash } from 'node:crypto';
import { searchParameterGeneration } from '../search/custom-search-parameter-registry';
import { indexColumns } from '../search/index-columns';
import { digestSql, SEALED_TYPES } from './sealing-queue';

/**
 * The SQL of the write path, fixed per resource type and built once. Each statement
 * writes the current row and its history row together (data-modifying CTEs), so a
 * write is one round trip and atomic without an explicit transaction. The history row
 * is inserted from the current row's RETURNING: when the current row is not written
 * (id already taken, or the version moved on), no history is written and rowCount is 0.
 *
 * Parameters:
 *   insert  $1 id, $2 version, $3 last_updated, $4 content, $5 method, $6… index columns
 *   update  $1 id, $2 version, $3 last_updated, $4 content, $5 method, $6 expected version, $7… index columns
 *   delete  $1 id, $2 version, $3 last_updated, $4 expected version
 */
export interface WriteStatements {
  insert: string;
  /**
   * Creates many new resources in one statement (version 1, method POST), with their
   * history rows. $1 last_updated; $2 a JSON array of rows `{ id, content, <column>: value }`
   * (absent columns are NULL), which PostgreSQL parses once: far cheaper than tens of
   * thousands of bind parameters. Rows whose id is taken are skipped: compare rowCount.
   */
  insertMany: string;
  update: string;
  delete: string;
  selectCurrent: string;
  read: string;
  /**
   * The current version's content and index columns replaced without a new version
   * ($meta-add, storage/write-labels.ts), if it is still `$4`: $1 id, $2 version,
   * $3 content, $4 content it must still have, $5… index columns.
   */
  relabel: string;
  columns: string[];
  /** Their SQL types, for statements whose parameters PostgreSQL cannot type from a column. */
  columnTypes: string[];
  /**
   * Part of the prepared statements' names. pg refuses a name it has prepared on a
   * connection with other text, and custom search parameters change a type's columns
   * while connections live on: the name follows the column list.
   */
  key: string;
}

const HISTORY = 'INSERT INTO resource_history (resource_type, id, version_id, last_updated, deleted, method, content)';

/**
 * A new version's history row holds no content while the version is current: the type's
 * row holds it (storage/history-content.ts). The update or delete that supersedes it
 * copies it over, in the same statement: CTEs `o` (the superseded version's content, read
 * in the statement's snapshot, i.e. before the write) and `f` (its history row, filled
 * once the write `w` wrote). `expected` is the parameter of the superseded version.
 */
function fillSuperseded(resourceType: string, expected: string): string {
  return (
    `, o AS (SELECT content FROM "${resourceType}" WHERE id = $1 AND version_id = ${expected}), ` +
    `f AS (UPDATE resource_history SET content = o.content FROM o, w WHERE resource_history.resource_type = '${resourceType}' ` +
    `AND resource_history.id = $1 AND resource_history.version_id = ${expected} AND resource_history.content IS NULL AND NOT resource_history.deleted)`
  );
}

function list(items: string[]): string {
  return items.map((item) => `, ${item}`).join('');
}

/**
 * CTEs `${p}w` (the write, returning the ids it wrote) and `${p}h` (their history rows,
 * selected from `${p}w`); with `queue`, a sealed type's rows are also queued for the
 * hash chain (`${p}q`, storage/sealing-queue.ts).
 */
function writeChain(p: string, resourceType: string, write: string, history: string, queue: boolean): string {
  const sealed = queue && SEALED_TYPES.has(resourceType);
  return (
    `${p}w AS (${write} RETURNING id${sealed ? ', content' : ''}), ${p}h AS (${HISTORY} ${history})` +
    (sealed ? `, ${p}q AS (INSERT INTO audit_unsealed (audit_event_id, digest) SELECT id, ${digestSql('content')} FROM ${p}w)` : '')
  );
}

/**
 * CTEs inserting new resources of a type (version 1, method POST) from `rows`, a JSON
 * array of `{ id, content, <column>: value }` (absent columns are NULL) that PostgreSQL
 * parses once, with their history rows. Ids already taken are skipped (the caller
 * compares the count). With `gatedBy` (a CTE), the rows are inserted only if that CTE
 * wrote a row, and an id already taken fails the whole statement.
 */
function newRows(p: string, resourceType: string, rows: string, lastUpdated: string, gatedBy?: string): string {
  const indexed = indexColumns(resourceType);
  const quoted = indexed.map((c) => `"${c.name}"`);
  const typed = indexed.map((c) => `, "${c.name}" ${c.sqlType}`).join('');
  return (
    `${p}v AS (SELECT * FROM jsonb_to_recordset(${rows}::jsonb) AS x(id text, content jsonb${typed})${gatedBy ? ` WHERE EXISTS (SELECT 1 FROM ${gatedBy})` : ''}), ` +
    writeChain(
      p,
      resourceType,
      `INSERT INTO "${resourceType}" (id, version_id, last_updated, deleted, content${list(quoted)}) ` +
        `SELECT id, 1, ${lastUpdated}::timestamptz, false, content${list(quoted)} FROM ${p}v${gatedBy ? '' : ' ON CONFLICT (id) DO NOTHING'}`,
      `SELECT '${resourceType}', id, 1, ${lastUpdated}::timestamptz, false, 'POST', NULL::jsonb FROM ${p}w`,
      true
    )
  );
}

/** The CTEs of the insert, update and delete of one row (parameters as in WriteStatements). */
function rowWrites(resourceType: string): { insert: string; update: string; delete: string; columns: number } {
  const table = `"${resourceType}"`;
  const type = `'${resourceType}'`;
  const quoted = indexColumns(resourceType).map((c) => `"${c.name}"`);
  const insertParams = quoted.map((_, i) => `$${i + 6}`);
  const updateParams = quoted.map((_, i) => `$${i + 7}`);
  return {
    insert: writeChain(
      '',
      resourceType,
      `INSERT INTO ${table} (id, version_id, last_updated, deleted, content${list(quoted)}) ` +
        `VALUES ($1, $2, $3, false, $4::jsonb${list(insertParams)}) ON CONFLICT (id) DO NOTHING`,
      `SELECT ${type}, id, $2::integer, $3::timestamptz, false, $5::text, NULL::jsonb FROM w`,
      true
    ),
    update: writeChain(
      '',
      resourceType,
      `UPDATE ${table} SET version_id = $2, last_updated = $3, deleted = false, content = $4::jsonb` +
        `${list(quoted.map((c, i) => `${c} = ${updateParams[i]}`))} WHERE id = $1 AND version_id = $6`,
      `SELECT ${type}, id, $2::integer, $3::timestamptz, false, $5::text, NULL::jsonb FROM w`,
      false
    ) + fillSuperseded(resourceType, '$6::integer'),
    delete: writeChain(
      '',
      resourceType,
      `UPDATE ${table} SET version_id = $2, last_updated = $3, deleted = true, content = NULL` +
        `${list(quoted.map((c) => `${c} = NULL`))} WHERE id = $1 AND version_id = $4`,
      `SELECT ${type}, id, $2::integer, $3::timestamptz, true, 'DELETE', NULL FROM w`,
      false
    ) + fillSuperseded(resourceType, '$4::integer'),
    columns: quoted.length,
  };
}

/** Each statement returns the ids it wrote: rowCount is 1 when the row was written, 0 when not. */
function build(resourceType: string): WriteStatements {
  const table = `"${resourceType}"`;
  const indexed = indexColumns(resourceType);
  const columns = indexed.map((c) => c.name);
  const writes = rowWrites(resourceType);
  return {
    insert: `WITH ${writes.insert} SELECT id FROM w`,
    insertMany: `WITH ${newRows('', resourceType, '$2', '$1')} SELECT id FROM w`,
    update: `WITH ${writes.update} SELECT id FROM w`,
    delete: `WITH ${writes.delete} SELECT id FROM w`,
    selectCurrent: `SELECT version_id, last_updated, deleted FROM ${table} WHERE id = $1`,
    read: `SELECT id, version_id, last_updated, deleted, content FROM ${table} WHERE id = $1`,
    relabel:
      `UPDATE ${table} SET content = $3::jsonb${columns.map((c, i) => `, "${c}" = $${i + 5}`).join('')} ` +
      'WHERE id = $1 AND version_id = $2 AND NOT deleted AND content = $4::jsonb',
    columns,
    columnTypes: indexed.map((c) => c.sqlType),
    key: `${resourceType}:${createHash('sha1').update(columns.join(',')).digest('hex').slice(0, 10)}`,
  };
}

/**
 * The insert, update and delete of a row of `resourceType` that also insert new
 * resources of `companionType` (the write's AuditEvent), in the same statement and only
 * if the row is written: atomic without a transaction, one round trip. The companions are
 * one more parameter after the write's own (the JSON array of insertMany's $2) and share
 * its last_updated ($3).
 */
export interface CompanionStatements {
  insert: string;
  update: string;
  delete: string;
  key: string;
}

function buildWithCompanions(resourceType: string, companionType: string): CompanionStatements {
  const writes = rowWrites(resourceType);
  const companions = (param: number): string => newRows('c', companionType, `$${param}`, '$3', 'w');
  return {
    insert: `WITH ${writes.insert}, ${companions(writes.columns + 6)} SELECT id FROM w`,
    update: `WITH ${writes.update}, ${companions(writes.columns + 7)} SELECT id FROM w`,
    delete: `WITH ${writes.delete}, ${companions(5)} SELECT id FROM w`,
    key: `${writeStatements(resourceType).key}+${writeStatements(companionType).key}`,
  };
}

const cache = new Map<string, WriteStatements>();
const companionCache = new Map<string, CompanionStatements>();
let cachedGeneration = searchParameterGeneration();

/** Rebuilt when the search parameter registry changes (custom parameters add columns). */
export function writeStatements(resourceType: string): WriteStatements {
  if (cachedGeneration !== searchParameterGeneration()) {
    cache.clear();
    companionCache.clear();
    cachedGeneration = searchParameterGeneration();
  }
  let statements = cache.get(resourceType);
  if (!statements) {
    statements = build(resourceType);
    cache.set(resourceType, statements);
  }
  return statements;
}

/** As writeStatements, for a write that carries new resources of `companionType` (see CompanionStatements). */
export function companionStatements(resourceType: string, companionType: string): CompanionStatements {
  const key = `${writeStatements(resourceType).key}|${writeStatements(companionType).key}`;
  let statements = companionCache.get(key);
  if (!statements) {
    statements = buildWithCompanions(resourceType, companionType);
    companionCache.set(key, statements);
  }
  return statements;
}

/** An older version's content replaced in its history row ($meta-add on `_history/[vid]`), if it is still `$5`: $1 type, $2 id, $3 version, $4 content. */
export const RELABEL_HISTORY =
  'UPDATE resource_history SET content = $4::jsonb WHERE resource_type = $1 AND id = $2 AND version_id = $3 AND NOT deleted AND content = $5::jsonb';
