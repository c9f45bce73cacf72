import type { Resource } from '@medplum/fhirtypes';
import { conflict, preconditionFailed } from '../core/outcome';
import { extractIndexValues } from '../search/extract-index-values';
import { assertValidResource } from '../validation/validate-resource';
import { type ResourceRow, type ResourceVersion, toVersion, withVersionMeta } from './resource-row';
import type { Knex } from 'knex';
import { PG_DEADLOCK, PG_SERIALIZATION_FAILURE, pgErrorCode } from './database';
import { type Db, runSql } from './sql';
import { writeSearchParameter } from './write-search-parameter';
import { withSubscriptionRules } from './subscription-rules';
import { writeSubscription } from './write-subscription';
import { writeAppointment } from './write-appointment';
import { writeAppointmentResponse } from './write-appointment-response';
import { newRowsParameter } from './new-rows-parameter';
import { knownProfile, storedProfilesWritten } from './stored-profiles';
import { companionStatements, writeStatements, type WriteStatements } from './write-statements';

/**
 * One change to one resource. Every mutation of the server — REST, bundle entries,
 * operations, jobs, the CLI — ends up as a WriteOperation given to writeResource, so
 * validation, versioning, indexing and history cannot be bypassed. The one exception is
 * `$meta-add`/`$meta-delete`, which R4 forbids to make a version: write-labels.ts changes
 * a version's labels in place, with the same validation and index extraction.
 */
export interface WriteOperation {
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  resourceType: string;
  id: string;
  /** The new content (POST, PUT, PATCH). Its id must equal `id`. */
  resource?: Resource;
  /** If-Match: the version the client believes is current. */
  ifMatch?: number;
  /**
   * The version the new content was computed from (a patch): if another write lands
   * first, writeResource throws StaleBaseError and the caller recomputes.
   */
  basedOnVersion?: number;
}

export interface WriteResult {
  version: ResourceVersion;
  /** true when this write brought the resource into existence (201). */
  created: boolean;
  /** true for a delete of something already deleted or never there: nothing was written. */
  noop: boolean;
  /** A SearchParameter write that started a reindex of existing resources: `Task/<id>` showing its progress. */
  reindexTask?: string;
}

/**
 * New resources stored by the same statement as a write, if and only if that statement
 * writes its row: the interaction's AuditEvent (audit/audit-recorder.ts), atomic with
 * the write without a transaction around it. Offered to every write statement that the
 * write path sends for this interaction (a retried attempt builds its rows again, with
 * new ids).
 */
export interface WriteCompanion {
  /** The type of every resource rowsFor returns. */
  resourceType: string;
  /** The new resources (ids chosen) to store with the write that will return `result`. */
  rowsFor(result: WriteResult): (Resource & { id: string })[];
  /** How many statements carrying companions wrote their row (counted here). */
  written: number;
}

/** The content a patch was computed from is no longer current. */
export class StaleBaseError extends Error {}

interface CurrentRow {
  version_id: number;
  last_updated: Date;
  deleted: boolean;
}

/** Attempts before giving up on a resource that other writers keep changing. */
const MAX_ATTEMPTS = 20;

function nextTimestamp(previous: Date | undefined): Date {
  const now = new Date();
  // lastUpdated must move forward per resource even if this host's clock lags another's.
  return previous && now.getTime() <= previous.getTime() ? new Date(previous.getTime() + 1) : now;
}

/**
 * Optimistic concurrency: read the current version, then write on the condition that it
 * is still current (one statement for row + history). PostgreSQL re-checks that
 * condition under the row lock, so of two racing writers one wins and the other sees
 * rowCount 0, reads again, and either applies on top (plain update) or fails with 412
 * (If-Match). Works the same inside a caller's transaction.
 */
export async function writeResource(db: Db, op: WriteOperation, companion?: WriteCompanion): Promise<WriteResult> {
  if (TYPES_READ_BEFORE_WRITING.has(op.resourceType)) {
    // Their rules read them before they are written: a malformed one is a 400 first, not a crash of the rule that reads
    // it. The rule then writes `op` itself without validating it again; what else it writes (a Slot, a reindex Task) is validated.
    if (op.resource) assertValidResource(op.resource, knownProfile);
    const write: typeof writeOneResource = (tx, o, c) => writeOneResource(tx, o, c, o === op);
    // A SearchParameter also changes what is indexed: see write-search-parameter.ts.
    if (op.resourceType === 'SearchParameter') {
      // Its schema changes run in a transaction of their own making: nothing may ride on its statement.
      if (companion) throw new Error('writeResource: a SearchParameter write carries no companion resources');
      return writeSearchParameter(db, op, write);
    }
    // A Subscription also switches the notification trigger: see write-subscription.ts.
    if (op.resourceType === 'Subscription') {
      if (companion) throw new Error('writeResource: a Subscription write carries no companion resources');
      return writeSubscription(db, op, write);
    }
    // An Appointment that holds time must not double-book: see write-appointment.ts.
    if (op.resourceType === 'Appointment') return writeAppointment(db, op, write, companion);
    // A reply sets its participant's status in the Appointment: see write-appointment-response.ts.
    return writeAppointmentResponse(db, op, write, writeResource, companion);
  }
  const result = await writeOneResource(db, op, companion);
  // A profile: the claims of the next writes are checked against it.
  if (op.resourceType === 'StructureDefinition' && !result.noop) await storedProfilesWritten(db);
  return result;
}

const TYPES_READ_BEFORE_WRITING: ReadonlySet<string> = new Set(['SearchParameter', 'Subscription', 'Appointment', 'AppointmentResponse']);

/**
 * A write statement of its own (autocommit) that PostgreSQL chose as a deadlock's victim
 * (a batch entry against a transaction Bundle locking the same rows in another order) was
 * rolled back whole: it runs again. Inside a transaction the whole transaction is what
 * runs again (Repository.transaction).
 */
async function runStatement(db: Db, name: string, sql: string, params: unknown[]): ReturnType<typeof runSql> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await runSql(db, name, sql, params);
    } catch (err) {
      const code = pgErrorCode(err);
      if ((db as Knex.Transaction).isTransaction || attempt >= 3 || (code !== PG_DEADLOCK && code !== PG_SERIALIZATION_FAILURE)) throw err;
    }
  }
}

/**
 * Sends a write statement, with the companions of its result when there are any: whether
 * it wrote, or 'stale' when a SearchParameter written meanwhile changed the type's columns
 * (the caller builds its parameters again).
 */
async function send(
  db: Db,
  op: WriteOperation,
  kind: 'insert' | 'update' | 'delete',
  params: unknown[],
  result: WriteResult,
  companion: WriteCompanion | undefined,
  /** The statements `params` were built for (their index columns). */
  sql: WriteStatements
): Promise<boolean | 'stale'> {
  if (writeStatements(op.resourceType).key !== sql.key) return 'stale';
  const rows = companion?.rowsFor(result) ?? [];
  if (!companion || rows.length === 0) {
    return (await runStatement(db, `${kind}:${sql.key}`, sql[kind], params)).rowCount === 1;
  }
  const { parameter } = newRowsParameter(companion.resourceType, rows, result.version.lastUpdated);
  const withCompanions = companionStatements(op.resourceType, companion.resourceType);
  const written = (await runStatement(db, `${kind}+:${withCompanions.key}`, withCompanions[kind], [...params, parameter])).rowCount === 1;
  if (written) companion.written++;
  return written;
}

async function writeOneResource(db: Db, given: WriteOperation, companion?: WriteCompanion, validated = false): Promise<WriteResult> {
  // Valid first: the Subscription rules read what they decide on.
  if (given.resource && !validated) assertValidResource(given.resource, knownProfile);
  const op = given.resource ? { ...given, resource: withSubscriptionRules(given.resource) } : given;
  let sql = writeStatements(op.resourceType);
  let indexValues = op.resource ? extractIndexValues(op.resource) : undefined;
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    if (sql.key !== writeStatements(op.resourceType).key) {
      sql = writeStatements(op.resourceType);
      indexValues = op.resource ? extractIndexValues(op.resource) : undefined;
    }
    const current =
      op.method === 'POST'
        ? undefined
        : (await runSql<CurrentRow>(db, `current:${sql.key}`, sql.selectCurrent, [op.id])).rows[0];
    const exists = current !== undefined && !current.deleted;
    if (op.ifMatch !== undefined && (!exists || current.version_id !== op.ifMatch)) {
      throw preconditionFailed(
        exists
          ? `Version ${op.ifMatch} of ${op.resourceType}/${op.id} is not current (current is ${current.version_id})`
          : `${op.resourceType}/${op.id} does not exist`
      );
    }
    if (op.basedOnVersion !== undefined && (!exists || current.version_id !== op.basedOnVersion)) {
      throw new StaleBaseError();
    }
    const versionId = (current?.version_id ?? 0) + 1;
    const lastUpdated = nextTimestamp(current?.last_updated);

    if (op.method === 'DELETE') {
      if (!exists) {
        const version = current?.version_id ?? 0;
        const row = { id: op.id, version_id: version, last_updated: current?.last_updated ?? lastUpdated, deleted: true, content: null };
        return { version: toVersion(op.resourceType, { ...row, method: 'DELETE' }), created: false, noop: true };
      }
      const row: ResourceRow = { id: op.id, version_id: versionId, last_updated: lastUpdated, deleted: true, content: null, method: 'DELETE' };
      const result: WriteResult = { version: toVersion(op.resourceType, row), created: false, noop: false };
      if ((await send(db, op, 'delete', [op.id, versionId, lastUpdated, current.version_id], result, companion, sql)) === true) return result;
      continue;
    }

    const source = op.resource as Resource;
    const content = withVersionMeta(source, versionId, lastUpdated);
    const json = JSON.stringify(content);
    const columns = sql.columns.map((c) => indexValues?.[c] ?? null);
    const row: ResourceRow = { id: op.id, version_id: versionId, last_updated: lastUpdated, deleted: false, content, method: op.method };
    const result: WriteResult = { version: toVersion(op.resourceType, row), created: !exists, noop: false };
    const written = current
      ? await send(db, op, 'update', [op.id, versionId, lastUpdated, json, op.method, current.version_id, ...columns], result, companion, sql)
      : await send(db, op, 'insert', [op.id, versionId, lastUpdated, json, op.method, ...columns], result, companion, sql);
    if (written === 'stale') continue;
    if (written) return result;
    if (op.method === 'POST') {
      throw conflict(`${op.resourceType}/${op.id} already exists`);
    }
  }
  throw conflict(`${op.resourceType}/${op.id} changed ${MAX_ATTEMPTS} times while this write was being applied; try again`);
}
