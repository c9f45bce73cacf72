import type { Knex } from 'knex';
import { customSearchParamDefinitions, isInEffect } from '../search/custom-search-parameter-definitions';
import { compileParam } from '../search/supported-parameters';
import { bumpRegistryVersion, refreshCustomSearchParameters } from '../storage/custom-search-parameter-store';
import { countLiveRows, readSearchParameterRow, reindexRows } from '../storage/reindex-rows';
import { type ReindexJobRow, type ReindexStatus, reindexTask } from '../storage/reindex-task';
import type { Repository } from '../storage/repository';

export interface ReindexOptions {
  batchSize: number;
  /**
   * How long after its SearchParameter was written a job may start: the time every
   * process needs to notice the new parameter (see jobs/background-jobs.ts). Rows that a
   * stale process writes before then lack the new column's value; the job, starting
   * after, visits them too.
   */
  settleMs: number;
}

/** Batches between two Task updates (the Task is also updated when a type is done). */
const TASK_EVERY_BATCHES = 10;

/**
 * Runs one batch of the oldest open reindex job that no other process holds, in one
 * transaction: the job row is locked (FOR UPDATE SKIP LOCKED) for the batch, the batch's
 * rows are updated, and the cursor moves, all or nothing. A crash loses at most the
 * batch in progress; any process then continues from the committed cursor.
 * Returns false when there was nothing to do.
 */
export async function runReindexBatch(knex: Knex, repo: Repository, options: ReindexOptions): Promise<boolean> {
  let completed = false;
  const worked = await knex.transaction(async (tx) => {
    const claimed = await tx.raw<{ rows: ReindexJobRow[] }>(
      `SELECT * FROM reindex_job
        WHERE status IN ('pending', 'running') AND created_at <= clock_timestamp() - make_interval(secs => ?)
        ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`,
      [options.settleMs / 1000]
    );
    const job = claimed.rows[0];
    if (!job) return false;
    const defs = await currentDefinitions(tx, job);
    if (!defs) {
      await saveJob(tx, repo, { ...job, status: 'cancelled' }, true);
      return true;
    }
    if (job.status === 'pending') {
      for (const type of job.types) {
        job.progress[type] = { done: 0, total: await countLiveRows(tx, type) };
      }
      job.status = 'running';
      await saveJob(tx, repo, job, true);
      return true;
    }
    const type = job.types.find((t) => !job.progress[t]?.finished);
    if (!type) {
      job.status = 'completed';
      await saveJob(tx, repo, job, true);
      await bumpRegistryVersion(tx);
      completed = true;
      return true;
    }
    const def = defs.get(type);
    const param = def ? compileParam(type, def) : undefined;
    const progress = job.progress[type];
    const batch = await reindexRows(tx, type, param ? [param] : [], progress.after ?? '', options.batchSize);
    progress.done += batch.visited;
    progress.after = batch.lastId ?? progress.after;
    progress.finished = batch.visited < options.batchSize;
    if (progress.finished) progress.total = Math.max(progress.total, progress.done);
    job.batches++;
    await saveJob(tx, repo, job, progress.finished || job.batches % TASK_EVERY_BATCHES === 0);
    return true;
  });
  // Searches on the parameter stop warning about missing values once every process reloads.
  if (completed) await refreshCustomSearchParameters(knex);
  return worked;
}

/** The definitions of the job's SearchParameter version, or undefined when it is no longer current or in effect. */
async function currentDefinitions(tx: Knex.Transaction, job: ReindexJobRow) {
  const sp = await readSearchParameterRow(tx, job.search_parameter_id);
  if (!sp || sp.deleted || !sp.content || sp.version_id !== job.search_parameter_version || !isInEffect(sp.content)) {
    return undefined;
  }
  try {
    return customSearchParamDefinitions(sp.content, { reference: `SearchParameter/${job.search_parameter_id}` });
  } catch {
    return undefined;
  }
}

async function saveJob(tx: Knex.Transaction, repo: Repository, job: ReindexJobRow, writeTask: boolean): Promise<void> {
  await tx.raw('UPDATE reindex_job SET status = ?, progress = ?::jsonb, batches = ?, updated_at = now() WHERE id = ?', [
    job.status satisfies ReindexStatus,
    JSON.stringify(job.progress),
    job.batches,
    job.id,
  ]);
  if (writeTask) {
    await repo.writeInTransaction(tx, { method: 'PUT', resourceType: 'Task', id: job.id, resource: reindexTask(job) });
  }
}
