import type { Knex } from 'knex';
import type pg from 'pg';
import { runMigrations } from './migrate';
import { refreshCustomSearchParameters } from './custom-search-parameter-store';
import { SCHEMA_LOCK_KEY } from './schema-lock';
import { syncIndexColumns } from './sync-index-columns';

interface ConnectionSource {
  acquireConnection(): Promise<pg.ClientBase>;
  releaseConnection(connection: pg.ClientBase): Promise<void>;
}

/**
 * Migrations, then the custom search parameters stored in the database, then the search
 * columns (official and custom), under a PostgreSQL session lock: several server
 * processes starting together against one database take turns instead of racing on
 * CREATE INDEX. Returns how many search columns and indexes were added.
 */
export async function prepareSchema(knex: Knex): Promise<number> {
  const source = knex.client as unknown as ConnectionSource;
  const lockHolder = await source.acquireConnection();
  try {
    await lockHolder.query('SELECT pg_advisory_lock($1)', [SCHEMA_LOCK_KEY]);
    try {
      await runMigrations(knex);
      await refreshCustomSearchParameters(knex);
      return await syncIndexColumns(knex);
    } finally {
      await lockHolder.query('SELECT pg_advisory_unlock($1)', [SCHEMA_LOCK_KEY]);
    }
  } finally {
    await source.releaseConnection(lockHolder);
  }
}
