import cluster from 'node:cluster';
import pino from 'pino';
import { ConfigError, loadConfig } from './config';
import { startServer } from './start';
import { startWorkers } from './workers';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`Configuration error: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const logger = pino({ level: config.logLevel });
  const server = config.workers > 1 && cluster.isPrimary ? await startWorkers(config, logger) : await startServer(config, logger);
  let shuttingDown = false;
  const shutdown = (signal: string): void => {
    // A signal to the process group reaches a WORKERS=n worker twice (from the group and
    // from its primary): the second must not end the drain (stop() is bounded by SHUTDOWN_TIMEOUT_MS).
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, 'shutting down');
    server.stop().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      }
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
