import { Queue, Worker } from 'bullmq';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Repository } from '../storage/repository';
import type { BackgroundJobs } from './background-jobs';
import { type JobRoundOptions, refreshRegistry, runJobRound } from './job-round';

export interface BullmqJobsOptions extends JobRoundOptions {
  redisUrl: string;
  /** BullMQ's key prefix: deployments sharing a Redis keep their queues apart with it. */
  prefix: string;
}

/** The queue's name under the prefix: its keys are `<prefix>:outbox:*`. */
export const OUTBOX_QUEUE = 'outbox';
const SCHEDULE = 'round';
/** A round that left work queues this one job at once; while one waits, more are not added. */
const FOLLOW_UP = 'round-follow-up';
const DONE = { removeOnComplete: true, removeOnFail: true } as const;
/** ioredis reconnects every ~2 s while Redis is away: one warning per source per minute is enough. */
const REDIS_WARN_EVERY_MS = 60_000;

function throttled(logger: Logger, everyMs: number): (message: string, err: unknown) => void {
  const last = new Map<string, number>();
  return (message, err) => {
    const now = Date.now();
    if (now - (last.get(message) ?? -Infinity) < everyMs) return;
    last.set(message, now);
    logger.warn({ err }, message);
  };
}

/**
 * The job runner with REDIS_URL: BullMQ schedules the rounds of job-round.ts across every
 * process and replica sharing the Redis (one job scheduler, `every` refreshMs, so one
 * round per interval for the whole deployment instead of one per process), and each
 * process runs a BullMQ Worker that takes them. A round that ends with work left queues
 * a follow-up at once. What the jobs do stays in PostgreSQL (export_job, reindex_job,
 * subscription_queue rows written in the writes' own transactions): Redis holds only when
 * to run, so nothing is lost when Redis is, and a round that a dead process held is
 * taken again once BullMQ finds it stalled (its PostgreSQL transaction was rolled back).
 *
 * Every process still checks the SearchParameter registry itself each refreshMs.
 */
export function startBullmqJobs(knex: Knex, repo: Repository, logger: Logger, options: BullmqJobsOptions): BackgroundJobs {
  let stopped = false;
  // The worker's blocking connection must wait for Redis to come back (BullMQ requires it);
  // the queue's commands fail after ioredis's retries, and the schedule is retried here.
  const connection = { url: options.redisUrl, maxRetriesPerRequest: null };
  const queue = new Queue(OUTBOX_QUEUE, { connection: { url: options.redisUrl }, prefix: options.prefix });
  const redisTrouble = throttled(logger, REDIS_WARN_EVERY_MS);
  queue.on('error', (err) => redisTrouble('job queue: Redis error', err));

  // The registry check is this process's own: a schedule shared by all would reach only one.
  // Reindex jobs wait two intervals before starting, so the process running a round has checked by then.
  let refreshing: Promise<void> = Promise.resolve();
  const refresher = setInterval(() => {
    refreshing = refreshing.then(() => refreshRegistry(knex, logger)).catch((err: unknown) => logger.error({ err }, 'SearchParameter registry check failed'));
  }, options.refreshMs);

  let round: Promise<unknown> = Promise.resolve();
  const worker = new Worker(
    OUTBOX_QUEUE,
    async () => {
      const running = runJobRound(knex, repo, logger, options, () => stopped).then((more) => ({ more }));
      round = running.catch(() => undefined);
      return running;
    },
    { connection, prefix: options.prefix, concurrency: 1 }
  );
  worker.on('error', (err) => redisTrouble('job worker: Redis error', err));
  worker.on('failed', (job, err) => logger.error({ err, job: job?.name }, 'background job failed; retrying at the next round'));
  // After completion the finished job is gone (removeOnComplete), so a follow-up's id is free again.
  worker.on('completed', (_job, result: { more?: boolean } | undefined) => {
    if (result?.more && !stopped) {
      queue.add(FOLLOW_UP, {}, { jobId: FOLLOW_UP, ...DONE }).catch((err: unknown) => logger.warn({ err }, 'job queue: could not queue a follow-up round'));
    }
  });

  // Until Redis answers, BullMQ holds the command; a refusal is retried here.
  void (async () => {
    while (!stopped) {
      try {
        await queue.upsertJobScheduler(SCHEDULE, { every: options.refreshMs }, { name: SCHEDULE, opts: DONE });
        return;
      } catch (err) {
        redisTrouble('job queue: could not schedule the rounds; retrying', err);
        await new Promise((resolve) => setTimeout(resolve, options.refreshMs));
      }
    }
  })();

  return {
    async stop() {
      stopped = true;
      clearInterval(refresher);
      // The round in progress ends at its next step (it checks `stopped`). BullMQ's own
      // graceful close would wait for Redis forever when it is gone: the round is awaited
      // here instead, and the worker closed at once. The schedule stays for the other processes.
      await round;
      await worker.close(true);
      await queue.close();
      await refreshing;
    },
  };
}
