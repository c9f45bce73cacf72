import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type pg from 'pg';

/** The pool, or an open transaction: both hand out a pg connection. */
export type Db = Knex | Knex.Transaction;

interface ConnectionSource {
  acquireConnection(): Promise<pg.ClientBase>;
  releaseConnection(connection: pg.ClientBase): Promise<void>;
  pool?: { numPendingAcquires(): number } | null;
}

/** A pooled connection as knex's pg dialect marks it when it fails. */
type PooledConnection = pg.ClientBase & { __knex__disposed?: unknown };

/** Connections kept between statements, at most this many per pool. */
const HELD_MAX = 4;
/** Held connections go back to knex's pool when unused this long. */
const HELD_IDLE_MS = 20;

/**
 * Connections runSql keeps for its next statements instead of handing each back to
 * knex's pool: a pool round (tarn's acquire and release, with their timers and
 * promises) cost 30–60 µs of CPU per statement on our machines, as much as a third of
 * what a read by id costs beside the statement itself. A connection is kept only while
 * nobody waits for the pool, and all go back once unused for HELD_IDLE_MS, so
 * transactions and knex.destroy() get them soon.
 */
class HeldConnections implements ConnectionSource {
  private readonly idle: PooledConnection[] = [];
  private timer: NodeJS.Timeout | undefined;
  private used = false;

  constructor(private readonly source: ConnectionSource) {}

  async acquireConnection(): Promise<PooledConnection> {
    this.used = true;
    for (let connection = this.idle.pop(); connection; connection = this.idle.pop()) {
      // Ended while held (the server closed it): the pool's validation discards it.
      if (!connection.__knex__disposed) return connection;
      void this.source.releaseConnection(connection);
    }
    return this.source.acquireConnection();
  }

  async releaseConnection(connection: PooledConnection): Promise<void> {
    if (this.idle.length >= HELD_MAX || connection.__knex__disposed || (this.source.pool?.numPendingAcquires() ?? 0) > 0) {
      return this.source.releaseConnection(connection);
    }
    this.idle.push(connection);
    this.timer ??= setTimeout(() => this.returnUnused(), HELD_IDLE_MS).unref();
  }

  private returnUnused(): void {
    this.timer = undefined;
    if (this.used && this.idle.length > 0) {
      // In use since the last look: keep them one more round.
      this.used = false;
      this.timer = setTimeout(() => this.returnUnused(), HELD_IDLE_MS).unref();
      return;
    }
    for (const connection of this.idle.splice(0)) void this.source.releaseConnection(connection);
  }
}

const held = new WeakMap<ConnectionSource, HeldConnections>();

function heldFor(source: ConnectionSource): HeldConnections {
  let connections = held.get(source);
  if (!connections) held.set(source, (connections = new HeldConnections(source)));
  return connections;
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
  values: unknown[],
  /** How the columns' text is read (the pool's parsers when absent). */
  types?: pg.CustomTypesConfig
): Promise<pg.QueryResult<R>> {
  const source = db.client as unknown as ConnectionSource;
  // A transaction's client returns its own connection and ignores the release.
  const connections = (db as Knex.Transaction).isTransaction ? source : heldFor(source);
  const connection = await connections.acquireConnection();
  try {
    return await connection.query<R>({ name: fittingName(name), text, values, ...(types ? { types } : {}) });
  } finally {
    await connections.releaseConnection(connection);
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
