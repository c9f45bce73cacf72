import { createHash } from 'node:crypto';
import { searchParameterGeneration } from '../search/custom-search-parameter-registry';
import { indexColumns } from '../search/index-columns';
import { withSealingQueue } from './sealing-queue';

/**
 * The SQL of the write path, fixed per resource type and built once. Each statement
 * writes the current row and its history row together (a data-modifying CTE), so a
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

function build(resourceType: string): WriteStatements {
  const table = `"${resourceType}"`;
  const type = `'${resourceType}'`;
  const indexed = indexColumns(resourceType);
  const columns = indexed.map((c) => c.name);
  const quoted = columns.map((c) => `"${c}"`);
  const list = (items: string[]): string => items.map((item) => `, ${item}`).join('');

  const insertParams = columns.map((_, i) => `$${i + 6}`);
  const insert =
    `WITH w AS (INSERT INTO ${table} (id, version_id, last_updated, deleted, content${list(quoted)}) ` +
    `VALUES ($1, $2, $3, false, $4::jsonb${list(insertParams)}) ON CONFLICT (id) DO NOTHING RETURNING id) ` +
    `${HISTORY} SELECT ${type}, id, $2::integer, $3::timestamptz, false, $5::text, $4::jsonb FROM w`;

  const updateParams = columns.map((_, i) => `$${i + 7}`);
  const update =
    `WITH w AS (UPDATE ${table} SET version_id = $2, last_updated = $3, deleted = false, content = $4::jsonb` +
    `${list(quoted.map((c, i) => `${c} = ${updateParams[i]}`))} WHERE id = $1 AND version_id = $6 RETURNING id) ` +
    `${HISTORY} SELECT ${type}, id, $2::integer, $3::timestamptz, false, $5::text, $4::jsonb FROM w`;

  const del =
    `WITH w AS (UPDATE ${table} SET version_id = $2, last_updated = $3, deleted = true, content = NULL` +
    `${list(quoted.map((c) => `${c} = NULL`))} WHERE id = $1 AND version_id = $4 RETURNING id) ` +
    `${HISTORY} SELECT ${type}, id, $2::integer, $3::timestamptz, true, 'DELETE', NULL FROM w`;

  const typed = columns.map((c, i) => `, "${c}" ${indexed[i].sqlType}`).join('');
  const insertMany =
    `WITH v AS (SELECT * FROM jsonb_to_recordset($2::jsonb) AS x(id text, content jsonb${typed})), ` +
    `w AS (INSERT INTO ${table} (id, version_id, last_updated, deleted, content${list(quoted)}) ` +
    `SELECT id, 1, $1::timestamptz, false, content${list(quoted)} FROM v ON CONFLICT (id) DO NOTHING RETURNING id) ` +
    `${HISTORY} SELECT ${type}, v.id, 1, $1::timestamptz, false, 'POST', v.content FROM v JOIN w ON w.id = v.id`;

  return {
    insert: withSealingQueue(resourceType, insert),
    insertMany: withSealingQueue(resourceType, insertMany),
    update,
    delete: del,
    selectCurrent: `SELECT version_id, last_updated, deleted FROM ${table} WHERE id = $1`,
    read: `SELECT id, version_id, last_updated, deleted, content FROM ${table} WHERE id = $1`,
    columns,
    columnTypes: indexed.map((c) => c.sqlType),
    key: `${resourceType}:${createHash('sha1').update(columns.join(',')).digest('hex').slice(0, 10)}`,
  };
}

const cache = new Map<string, WriteStatements>();
let cachedGeneration = searchParameterGeneration();

/** Rebuilt when the search parameter registry changes (custom parameters add columns). */
export function writeStatements(resourceType: string): WriteStatements {
  if (cachedGeneration !== searchParameterGeneration()) {
    cache.clear();
    cachedGeneration = searchParameterGeneration();
  }
  let statements = cache.get(resourceType);
  if (!statements) {
    statements = build(resourceType);
    cache.set(resourceType, statements);
  }
  return statements;
}
