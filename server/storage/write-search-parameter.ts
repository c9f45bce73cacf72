import type { SearchParameter } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { newId } from '../core/ids';
import { unprocessable } from '../core/outcome';
import { customSearchParamDefinitions, STATUSES_IN_EFFECT } from '../search/custom-search-parameter-definitions';
import type { SearchParamDef } from '../search/search-parameter-definitions';
import { compileParam } from '../search/supported-parameters';
import { bumpRegistryVersion, markRegistryChanged, refreshCustomSearchParameters } from './custom-search-parameter-store';
import { type ReindexJobRow, reindexTask } from './reindex-task';
import { SCHEMA_LOCK_KEY } from './schema-lock';
import type { Db } from './sql';
import { addIndexColumns } from './sync-index-columns';
import type { WriteOperation, WriteResult } from './write-resource';

type Write = (db: Db, op: WriteOperation) => Promise<WriteResult>;

/**
 * A write of a SearchParameter is also a change of the search schema. In one transaction,
 * under the schema lock:
 *  1. refuse a definition that cannot be applied (before anything is written);
 *  2. write the resource (the normal write path);
 *  3. add its index columns and indexes to each base table;
 *  4. cancel the reindex of its previous version, start one for this version (a
 *     reindex_job row and the Task that shows its progress);
 *  5. increase the registry version, which tells every process to reload.
 * So a SearchParameter is never visible without its columns, and the reindex cannot be
 * lost. The writing process reloads its registry right after commit; the others within
 * their refresh interval (jobs/background-jobs.ts).
 */
export async function writeSearchParameter(db: Db, op: WriteOperation, write: Write): Promise<WriteResult> {
  const reference = `SearchParameter/${op.id}`;
  const defs = op.resource ? customSearchParamDefinitions(op.resource as SearchParameter, { reference }) : new Map();
  const apply = async (tx: Knex.Transaction): Promise<WriteResult> => {
    await tx.raw('SELECT pg_advisory_xact_lock(?)', [SCHEMA_LOCK_KEY]);
    await assertNoOtherCustomParameter(tx, op.id, defs);
    const result = await write(tx, op);
    if (result.noop) return result;
    await cancelOpenJobs(tx, op.id, write);
    let taskReference: string | undefined;
    if (defs.size > 0) {
      for (const [type, def] of defs) {
        const param = compileParam(type, def);
        if (param) await addIndexColumns(tx, type, param.handler.columns(param));
      }
      taskReference = await startReindex(tx, op.id, result.version.versionId, [...defs.keys()], write);
    }
    await bumpRegistryVersion(tx);
    return taskReference ? { ...result, reindexTask: taskReference } : result;
  };
  if (db.isTransaction) {
    // The caller commits; this process reloads right after (Repository.transaction), the others within their refresh interval.
    const result = await apply(db as Knex.Transaction);
    if (!result.noop) markRegistryChanged();
    return result;
  }
  const knex = db as Knex;
  const result = await knex.transaction(apply);
  if (!result.noop) await refreshCustomSearchParameters(knex);
  return result;
}

/** Two custom parameters with one code (case-insensitively: it is the column name) on one type are refused. */
async function assertNoOtherCustomParameter(tx: Knex.Transaction, id: string, defs: Map<string, SearchParamDef>): Promise<void> {
  if (defs.size === 0) return;
  const code = [...defs.values()][0].code;
  const others = await tx.raw<{ rows: { id: string; content: SearchParameter }[] }>(
    `SELECT id, content FROM "SearchParameter"
      WHERE NOT deleted AND id <> ? AND content->>'status' = ANY(?) AND lower(content->>'code') = lower(?)`,
    [id, [...STATUSES_IN_EFFECT], code]
  );
  for (const other of others.rows) {
    let theirs: Map<string, SearchParamDef>;
    try {
      theirs = customSearchParamDefinitions(other.content, { reference: `SearchParameter/${other.id}` });
    } catch {
      continue; // not applied, so not in the way
    }
    const shared = [...defs.keys()].find((type) => theirs.has(type));
    if (shared) {
      throw unprocessable(
        `SearchParameter/${other.id} already defines '${theirs.get(shared)?.code}' on ${shared}; retire or delete it first`,
        'SearchParameter.code'
      );
    }
  }
}

async function cancelOpenJobs(tx: Knex.Transaction, searchParameterId: string, write: Write): Promise<void> {
  const cancelled = await tx.raw<{ rows: ReindexJobRow[] }>(
    `UPDATE reindex_job SET status = 'cancelled', updated_at = now()
      WHERE search_parameter_id = ? AND status IN ('pending', 'running') RETURNING *`,
    [searchParameterId]
  );
  for (const job of cancelled.rows) {
    await write(tx, { method: 'PUT', resourceType: 'Task', id: job.id, resource: reindexTask(job) });
  }
}

async function startReindex(
  tx: Knex.Transaction,
  searchParameterId: string,
  version: number,
  types: string[],
  write: Write
): Promise<string> {
  // clock_timestamp(), not now(): the job may start only a refresh window after the columns
  // exist, and in a long transaction (an index built on a large table) now() is far earlier.
  const inserted = await tx.raw<{ rows: ReindexJobRow[] }>(
    `INSERT INTO reindex_job (id, search_parameter_id, search_parameter_version, status, types, created_at)
     VALUES (?, ?, ?, 'pending', ?, clock_timestamp()) RETURNING *`,
    [newId(), searchParameterId, version, types]
  );
  const job = inserted.rows[0];
  await write(tx, { method: 'POST', resourceType: 'Task', id: job.id, resource: reindexTask(job) });
  return `Task/${job.id}`;
}
