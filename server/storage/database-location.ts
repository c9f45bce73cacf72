import path from 'node:path';
import type { EmbeddedDatabase } from './embedded-postgres';

/**
 * DATABASE_URL when set; otherwise an embedded PostgreSQL with its data in
 * `<dataDir>/postgres`, started here (the caller stops it with the server).
 */
export async function locateDatabase(
  databaseUrl: string | undefined,
  dataDir: string,
  log: (message: string) => void
): Promise<{ url: string; embedded?: EmbeddedDatabase }> {
  if (databaseUrl) return { url: databaseUrl };
  // Loaded only when needed: embedded-postgres is an ES module and a large one.
  const { startEmbeddedPostgres } = require('./embedded-postgres') as typeof import('./embedded-postgres');
  const embedded = await startEmbeddedPostgres(path.join(dataDir, 'postgres'), 'fhir', log);
  log('embedded PostgreSQL started');
  return { url: embedded.url, embedded };
}
