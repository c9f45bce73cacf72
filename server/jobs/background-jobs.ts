import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { loadedRegistryVersion } from '../search/custom-search-parameter-registry';
import { refreshCustomSearchParameters, registryVersion } from '../storage/custom-search-parameter-store';
import type { Repository } from '../storage/repository';
import { runReindexBatch } from './reindex-job';
import { type ExportRunnerOptions, runExportStep } from './export-runner';
import { type DeliveryOptions, runDeliveryStep } from './subscription-delivery';

export interface BackgroundJobsOptions {
  /** How often the registry version is checked (and open jobs looked for). */
  refreshMs: number;
  reindexBatchSize: number;
  /** Bulk Data exports: resources per step, and the access settings their reads are confined with. */
  export?: ExportRunnerOptions;
  /** rest-hook Subscription notifications. */
  subscriptions?: DeliveryOptions;
}

export interface BackgroundJobs {
  /** Finishes the batch in progress, then stops; the next start (any process) continues the job. */
  stop(): Promise<void>;
}

/**
 * The in-process runner (no REDIS_URL): every `refreshMs`, reload the custom search
 * parameters if their version in PostgreSQL moved, then run reindex batches, Subscription
 * notifications and Bulk Data export steps for at most half an interval, so that a long
 * job never delays the next registry check by much; when work is left, the next round
 * starts at once rather than an interval later.
 *
 * Polling one row is how processes learn of a SearchParameter another process wrote: a
 * process writes without the new column for at most ~1.5 × refreshMs after the commit
 * (a check, plus a batch budget), so reindex jobs wait 2 × refreshMs + 1 s before
 * starting, and then visit every row.
 */
export function startBackgroundJobs(knex: Knex, repo: Repository, logger: Logger, options: BackgroundJobsOptions): BackgroundJobs {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const settleMs = 2 * options.refreshMs + 1000;

  /** One round; true when work was left when its time ran out (the next round then starts at once). */
  const tick = async (): Promise<boolean> => {
    try {
      if ((await registryVersion(knex)) !== loadedRegistryVersion()) {
        const loaded = await refreshCustomSearchParameters(knex);
        for (const skip of loaded.skipped) logger.warn(skip, 'stored SearchParameter not applied');
      }
      const deadline = Date.now() + options.refreshMs / 2;
      const steps: (() => Promise<boolean>)[] = [() => runReindexBatch(knex, repo, { batchSize: options.reindexBatchSize, settleMs })];
      const { subscriptions, export: exports } = options;
      if (subscriptions) steps.push(() => runDeliveryStep(knex, repo, logger, subscriptions));
      if (exports) steps.push(() => runExportStep(knex, repo, logger, exports));
      let left = false;
      for (const step of steps) {
        let more = true;
        while (more && !stopped && Date.now() < deadline) more = await step();
        left ||= more;
      }
      return left && !stopped;
    } catch (err) {
      logger.error({ err }, 'background job failed; retrying at the next interval');
      return false;
    }
  };
  const schedule = (busy = false): void => {
    if (stopped) return;
    timer = setTimeout(
      () => {
        running = tick().then(schedule);
      },
      busy ? 0 : options.refreshMs
    );
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
