import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from './config';
import { createKnex } from './storage/database';
import { startOnDatabase } from './storage/database-location';
import { prepareSchema } from './storage/prepare-schema';
import { setContentSearch } from './search/full-text-settings';

export interface RunningWorkers {
  stop(): Promise<void>;
}

/** A worker that dies this soon after starting is not restarted: it would only die again. */
const MIN_UPTIME_MS = 5000;

/**
 * `WORKERS` > 1: this primary process owns the database side (starts the embedded
 * PostgreSQL when there is no DATABASE_URL, prepares the schema once) and runs that many
 * server processes on the same port (node:cluster hands out connections). The server
 * keeps no state in memory that another process needs, so each worker is a complete
 * server and one Node event loop per core does the JSON, validation and indexing work.
 */
export async function startWorkers(config: Config, logger: Logger): Promise<RunningWorkers> {
  const { databaseUrl, embedded } = await startOnDatabase(config.databaseUrl, config.dataDir, config.port, (m) => logger.info(m), async (databaseUrl, embedded) => {
    // prepareSchema holds one connection for its lock and migrates on another.
    const knex = createKnex(databaseUrl, 2);
    try {
      // Before the schema: SEARCH_CONTENT decides whether the `_content` columns exist.
      setContentSearch(config.searchContent);
      const added = await prepareSchema(knex);
      if (added > 0) logger.info({ added }, 'search index columns created');
    } finally {
      await knex.destroy();
    }
    return { databaseUrl, embedded };
  });

  let stopping = false;
  const started = new Map<Worker, number>();
  const fork = (): void => {
    // EMBEDDED_DATABASE: the URL is the embedded PostgreSQL's, whose port changes at each start (audit-journal.ts, journalDirFor).
    const worker = cluster.fork({ DATABASE_URL: databaseUrl, ...(embedded ? { EMBEDDED_DATABASE: '1' } : {}) });
    started.set(worker, Date.now());
  };
  cluster.on('exit', (worker, code, signal) => {
    const uptime = Date.now() - (started.get(worker) ?? 0);
    started.delete(worker);
    if (stopping) return;
    logger.error({ pid: worker.process.pid, code, signal }, 'server worker exited');
    if (uptime >= MIN_UPTIME_MS) fork();
    else if (started.size === 0) {
      logger.fatal('every server worker failed at start; giving up');
      process.exitCode = 1;
      void embedded?.stop();
    }
  });
  for (let i = 0; i < config.workers; i++) fork();
  logger.info({ workers: config.workers, port: config.port }, 'server workers started');

  return {
    stop: async () => {
      stopping = true;
      const workers = [...started.keys()];
      await Promise.all(
        workers.map(
          (worker) =>
            new Promise<void>((resolve) => {
              if (worker.isDead()) return resolve();
              worker.once('exit', () => resolve());
              worker.process.kill('SIGTERM');
            })
        )
      );
      await embedded?.stop();
    },
  };
}
