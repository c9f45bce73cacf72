import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Repository } from '../storage/repository';
import { type JobRoundOptions, refreshRegistry, runJobRound } from './job-round';

export interface BackgroundJobs {
  /** Finishes the batch in progress, then stops; the next start (any process) continues the job. */
  stop(): Promise<void>;
}

/**
 * The in-process runner (no REDIS_URL): every `refreshMs`, reload the custom search
 * parameters if their version in PostgreSQL moved, then run a round of reindex batches,
 * Subscription notifications and Bulk Data export steps (job-round.ts); when work is
 * left, the next round starts at once rather than an interval later. With REDIS_URL,
 * bullmq-jobs.ts schedules the rounds instead.
 */
export function startBackgroundJobs(knex: Knex, repo: Repository, logger: Logger, options: JobRoundOptions): BackgroundJobs {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  /** One round; true when work was left when its time ran out (the next round then starts at once). */
  const tick = async (): Promise<boolean> => {
    try {
      await refreshRegistry(knex, logger);
      return await runJobRound(knex, repo, logger, options, () => stopped);
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
