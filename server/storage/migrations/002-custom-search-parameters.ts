import type { Knex } from 'knex';

/**
 * What custom SearchParameters need besides the SearchParameter table itself:
 *  - one version number that every write of a SearchParameter (and every finished
 *    reindex) increases, so that each server process can tell with one cheap query that
 *    its snapshot of the registry is stale;
 *  - one row per reindex of existing resources, with its cursor, so that the work
 *    survives a crash and is claimed by one process at a time (FOR UPDATE SKIP LOCKED).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS search_parameter_registry (
      singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
      version bigint NOT NULL
    )`);
  await knex.raw('INSERT INTO search_parameter_registry (singleton, version) VALUES (true, 0) ON CONFLICT DO NOTHING');
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS reindex_job (
      id text PRIMARY KEY,
      search_parameter_id text NOT NULL,
      search_parameter_version integer NOT NULL,
      status text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'cancelled')),
      types text[] NOT NULL,
      progress jsonb NOT NULL DEFAULT '{}'::jsonb,
      batches integer NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw(
    `CREATE INDEX IF NOT EXISTS reindex_job_open_idx ON reindex_job (created_at) WHERE status IN ('pending', 'running')`
  );
  await knex.raw('CREATE INDEX IF NOT EXISTS reindex_job_search_parameter_idx ON reindex_job (search_parameter_id)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS reindex_job');
  await knex.raw('DROP TABLE IF EXISTS search_parameter_registry');
}
