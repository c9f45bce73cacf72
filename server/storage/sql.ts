import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type pg from 'pg';

/** The pool, or an open transaction: both hand out a pg connection. */
export type Db = Knex | Knex.Transaction;

interface ConnectionSource {
  acquireConnection(): Promise<pg.ClientBase>;
  releaseConnection(connection: pg.ClientBase): Promise<void>;
}

/**
 * Runs one statement on a pg connection of the pool or of the transaction, bypassing
 * knex's query builder. For the hot paths (read by id, every write): fixed SQL per
 * resource type, sent as a named prepared statement so PostgreSQL plans it once per
 * connection.
 */
export async function runSql<R extends pg.QueryResultRow>(
  db: Db,
  name: string,
  text: string,
  values: unknown[]
): Promise<pg.QueryResult<R>> {
  // A transaction's client returns its own connection and ignores the release.
  const source = db.client as unknown as ConnectionSource;
  const connection = await source.acquireConnection();
  try {
    return await connection.query<R>({ name: fittingName(name), text, values });
  } finally {
    await source.releaseConnection(connection);
  }
}

const fitted = new Map<string, string>();

/**
 * PostgreSQL cuts identifiers (index names, prepared statement names) to 63 bytes, so two
 * long names could meet as one: a long name keeps a readable prefix and ends in a hash of
 * all of it. Statement names go through it (a write with its AuditEvent on a long type
 * name: `insert+:CoverageEligibilityRequest:…+AuditEvent:…`), and so do index names
 * (sync-index-columns.ts), whose existing names it must keep.
 */
export function fittingName(name: string): string {
  if (Buffer.byteLength(name) <= 63) return name;
  let short = fitted.get(name);
  if (short === undefined) {
    short = `${name.slice(0, 52)}_${createHash('sha1').update(name).digest('hex').slice(0, 10)}`;
    fitted.set(name, short);
  }
  return short;
}
