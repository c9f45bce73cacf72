import path from 'node:path';
import type { EmbeddedDatabase } from './embedded-postgres';

/**
 * DATABASE_URL when set; otherwise an embedded PostgreSQL with its data in
 * `<dataDir>/postgres`, started here (the caller stops it with the server).
 */
export async function locateDatabase(
  databaseUrl: string | undefined,
  dataDir: string,
  httpPort: number,
  log: (message: string) => void
): Promise<{ url: string; embedded?: EmbeddedDatabase }> {
  if (databaseUrl) return { url: databaseUrl };
  // Loaded only when needed: embedded-postgres is an ES module and a large one.
  const { startEmbeddedPostgres } = require('./embedded-postgres') as typeof import('./embedded-postgres');
  const embedded = await startEmbeddedPostgres(path.join(dataDir, 'postgres'), 'fhir', log, httpPort);
  log('embedded PostgreSQL started');
  return { url: embedded.url, embedded };
}

/**
 * Runs `start` on the located database. The embedded PostgreSQL runs in a process group
 * of its own, so when `start` fails nothing else would stop it: this does.
 */
export async function startOnDatabase<T>(
  databaseUrl: string | undefined,
  dataDir: string,
  httpPort: number,
  log: (message: string) => void,
  start: (url: string, embedded: EmbeddedDatabase | undefined) => Promise<T>
): Promise<T> {
  const { url, embedded } = await locateDatabase(databaseUrl, dataDir, httpPort, log);
  try {
    return await start(url, embedded);
  } catch (err) {
    await embedded?.stop().catch(() => undefined);
    throw err;
  }
}
