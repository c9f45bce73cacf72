import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { loadedRegistryVersion } from '../search/custom-search-parameter-registry';
import { refreshCustomSearchParameters, registryVersion } from '../storage/custom-search-parameter-store';
import { refreshStoredProfiles } from '../storage/stored-profiles';
import type { Repository } from '../storage/repository';
import { type ExportRunnerOptions, runExportStep } from './export-runner';
import { deleteExpiredExports } from '../storage/export-jobs';
import { runReindexBatch } from './reindex-job';
import { type DeliveryOptions, runDeliveryStep } from './subscription-delivery';

export interface JobRoundOptions {
  /** How often the registry version is checked (and open jobs looked for). */
  refreshMs: number;
  reindexBatchSize: number;
  /** Bulk Data exports: resources per step, and the access settings their reads are confined with. */
  export?: ExportRunnerOptions;
  /** rest-hook Subscription notifications. */
  subscriptions?: DeliveryOptions;
}

/**
 * Reloads the custom search parameters if their version in PostgreSQL moved, and the
 * stored profiles if their table changed. Every process does this for itself, whoever
 * runs the jobs: it is how a process learns of a SearchParameter or a StructureDefinition
 * another one wrote.
 */
export async function refreshRegistry(knex: Knex, logger: Logger): Promise<void> {
  if ((await registryVersion(knex)) !== loadedRegistryVersion()) {
    const loaded = await refreshCustomSearchParameters(knex);
    for (const skip of loaded.skipped) logger.warn(skip, 'stored SearchParameter not applied');
  }
  // And the stored profiles (StructureDefinitions) that writes check their claims against.
  await refreshStoredProfiles(knex);
}

/**
 * One round of the jobs whose state lives in PostgreSQL (the durable outbox): reindex
 * batches, Subscription notifications, Bulk Data export steps and the deletion of
 * expired exports, for at most half a
 * refresh interval, so that a long job never delays the next round by much. Each step
 * claims its rows FOR UPDATE SKIP LOCKED, so rounds may run in several processes at once.
 * Returns true when work was left when its time ran out.
 *
 * A process writes without a new SearchParameter's column for at most ~1.5 × refreshMs
 * after the commit (a registry check, plus a batch budget), so reindex jobs wait
 * 2 × refreshMs + 1 s before starting, and then visit every row.
 */
export async function runJobRound(knex: Knex, repo: Repository, logger: Logger, options: JobRoundOptions, stopped: () => boolean): Promise<boolean> {
  const deadline = Date.now() + options.refreshMs / 2;
  const settleMs = 2 * options.refreshMs + 1000;
  const steps: (() => Promise<boolean>)[] = [() => runReindexBatch(knex, repo, { batchSize: options.reindexBatchSize, settleMs })];
  const { subscriptions, export: exports } = options;
  if (subscriptions) steps.push(() => runDeliveryStep(knex, repo, logger, subscriptions));
  if (exports) steps.push(() => runExportStep(knex, repo, logger, exports));
  // Expired exports go once a round: one DELETE, nothing left for the next.
  const retention = exports?.retentionSeconds;
  if (retention !== undefined) steps.push(async () => (await deleteExpiredExports(knex, retention), false));
  let left = false;
  for (const step of steps) {
    let more = true;
    while (more && !stopped() && Date.now() < deadline) more = await step();
    left ||= more;
  }
  return left && !stopped();
}
