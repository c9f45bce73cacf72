import http from 'node:http';
import https from 'node:https';
import type { Knex } from 'knex';
import pino, { type Logger } from 'pino';
import { shippedOperationPolicy, shippedRolePolicy } from './access/role-policy';
import { ConsentWatch } from './access/consent-watch';
import { createApp } from './app';
import { SubscriptionSockets } from './http/subscription-sockets';
import { publishOperationDefinitions } from './operations/operation-definitions';
import { journalDirFor } from './audit/audit-journal';
import { ChainAnchors } from './audit/chain-anchors';
import { AuditRecorder } from './audit/audit-recorder';
import type { Config } from './config';
import { RateLimits } from './http/rate-limit';
import { startBackgroundJobs } from './jobs/background-jobs';
import { startBullmqJobs } from './jobs/bullmq-jobs';
import { createKnex } from './storage/database';
import { startOnDatabase } from './storage/database-location';
import type { EmbeddedDatabase } from './storage/embedded-postgres';
import { Repository } from './storage/repository';
import { prepareSchema } from './storage/prepare-schema';
import { refreshStoredProfiles } from './storage/stored-profiles';
import { warmUpValidation } from './validation/validate-resource';
import { setContentSearch } from './search/full-text-settings';

/** Resources per Bulk Data export step and file (server/jobs/export-runner.ts). */
const EXPORT_PAGE_SIZE = 1000;

export interface RunningServer {
  /** The address it listens on, e.g. http://127.0.0.1:8080 */
  url: string;
  knex: Knex;
  logger: Logger;
  /** The audit trail's writer (undefined with AUDIT=false). */
  audit?: AuditRecorder;
  /** Stops accepting, lets in-flight requests finish, closes the database. */
  stop(): Promise<void>;
}

/** Database (embedded when no DATABASE_URL), migrations, then the HTTP listener. */
export async function startServer(config: Config, logger: Logger = pino({ level: config.logLevel })): Promise<RunningServer> {
  return startOnDatabase(config.databaseUrl, config.dataDir, config.port, (m) => logger.info(m), (databaseUrl, embedded) => startOn(databaseUrl, embedded, config, logger));
}

async function startOn(databaseUrl: string, embedded: EmbeddedDatabase | undefined, config: Config, logger: Logger): Promise<RunningServer> {
  const knex = createKnex(databaseUrl, config.databasePoolMax);
  // Before the schema: SEARCH_CONTENT decides whether the `_content` columns exist.
  setContentSearch(config.searchContent);
  const added = await prepareSchema(knex);
  if (added > 0) {
    logger.info({ added }, 'search index columns created');
  }
  // Writes check the profiles they claim, the stored ones included, from the first request on.
  await refreshStoredProfiles(knex);
  // The validator compiles its definitions lazily (~0.4 s): pay that before the first request.
  warmUpValidation();
  // A mistake in policies/roles.json stops the start here, naming the entry.
  shippedRolePolicy();
  shippedOperationPolicy();

  const repo = new Repository(knex, {
    searchDefaultCount: config.searchDefaultCount,
    searchMaxCount: config.searchMaxCount,
  });
  await publishOperationDefinitions(repo, `${config.publicUrl}/fhir`);
  // Reindexes, notifications and exports from their PostgreSQL rows, and noticing SearchParameters other processes write:
  // scheduled by BullMQ on REDIS_URL, or by a timer in this process.
  const jobOptions = {
    refreshMs: config.searchParameterRefreshMs,
    reindexBatchSize: config.reindexBatchSize,
    export: { pageSize: EXPORT_PAGE_SIZE, retentionSeconds: config.exportRetentionSeconds, accessOptions: { patientDependants: config.patientDependants } },
    subscriptions: { batchSize: 50, timeoutMs: 5000, maxAttempts: 5 },
  };
  const jobs = config.redisUrl
    ? startBullmqJobs(knex, repo, logger, { ...jobOptions, redisUrl: config.redisUrl, prefix: config.jobsRedisPrefix })
    : startBackgroundJobs(knex, repo, logger, jobOptions);
  const audit = config.audit
    ? new AuditRecorder(
        knex,
        { searchDefaultCount: config.searchDefaultCount, searchMaxCount: config.searchMaxCount },
        `${config.publicUrl}/fhir`,
        {
          onError: (err) => logger.warn({ err }, 'storing or linking AuditEvents failed; they stay in the journal or queue and are retried'),
          journal:
            config.auditReads === 'journal'
              ? {
                  dir: journalDirFor(config.auditJournalDir, databaseUrl, embedded !== undefined || config.databaseIsEmbedded),
                  sync: config.auditJournalSync,
                  intervalMs: config.auditJournalIntervalMs,
                }
              : undefined,
          anchors: await ChainAnchors.open(knex, config.auditAnchorDir, config.auditJournalSync),
        }
      )
    : undefined;
  // AuditEvents that a process which died left unlinked to the chain.
  await audit?.start();
  const consentWatch = ConsentWatch.forKnex(knex, logger);
  await consentWatch.start();
  const limits = RateLimits.create(config.rateLimit, config.redisUrl, logger);
  const { app, verify } = createApp({ config, repo, logger, knex, audit, consentWatch, limits });
  // TLS 1.2 at least (SMART App Launch, Backend Services); Node's default, said here so that no setting lowers it.
  const server = config.tls ? https.createServer({ cert: config.tls.cert, key: config.tls.key, minVersion: 'TLSv1.2' }, app.callback()) : http.createServer(app.callback());
  server.keepAliveTimeout = 65000;
  // Subscriptions of channel type websocket: clients bind on /fhir/websocket and are pinged there.
  const sockets = SubscriptionSockets.forKnex(knex, { repo, verify, authRequired: config.auth.required, accessOptions: { patientDependants: config.patientDependants }, logger });
  await sockets.start(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `${config.tls ? 'https' : 'http'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info({ url, fhirBase: `${config.publicUrl}/fhir` }, 'FHIR server listening');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timeout = new Promise<void>((resolve) =>
        setTimeout(() => {
          server.closeAllConnections();
          resolve();
        }, config.shutdownTimeoutMs).unref()
      );
      await sockets.stop();
      await Promise.race([closed, timeout]);
      await jobs.stop();
      await consentWatch.stop();
      await limits.close();
      await audit?.close().catch((err) => logger.error({ err }, 'audit flush at shutdown failed'));
      await knex.destroy();
      await embedded?.stop();
    })();
    return stopping;
  };
  return { url, knex, logger, audit, stop };
}
