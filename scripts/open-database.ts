import path from 'node:path';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Config } from '../server/config';
import { createKnex } from '../server/storage/database';
import { prepareSchema } from '../server/storage/prepare-schema';
import { setContentSearch } from '../server/search/full-text-settings';

/** The server's database for CLI commands: DATABASE_URL, or the embedded one in DATA_DIR. */
export async function openDatabase(
  config: Config,
  logger: Logger
): Promise<{ knex: Knex; changes: number; close(): Promise<void> }> {
  let url = config.databaseUrl;
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (!url) {
    const { runningEmbeddedPostgres, startEmbeddedPostgres } = require('../server/storage/embedded-postgres') as typeof import('../server/storage/embedded-postgres');
    const dataDir = path.join(config.dataDir, 'postgres');
    // Next to a running `npm start`, its PostgreSQL; otherwise one of our own for this command.
    const embedded = runningEmbeddedPostgres(dataDir, 'fhir') ?? (await startEmbeddedPostgres(dataDir, 'fhir', (m) => logger.info(m)));
    url = embedded.url;
    stopEmbedded = () => embedded.stop();
  }
  const knex = createKnex(url, 2);
  // Before the schema: SEARCH_CONTENT decides whether the `_content` columns exist.
  setContentSearch(config.searchContent);
  const changes = await prepareSchema(knex);
  return {
    knex,
    changes,
    close: async () => {
      await knex.destroy();
      await stopEmbedded?.();
    },
  };
}
