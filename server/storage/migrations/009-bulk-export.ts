import type { Knex } from 'knex';

/**
 * Bulk Data exports (operations/bulk-export.ts, jobs/export-runner.ts): a job per kick-off, worked on in steps by whichever
 * process claims it (FOR UPDATE SKIP LOCKED), and its NDJSON files, kept in PostgreSQL so
 * that any process can serve them and a restart loses nothing.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE export_job (
      id uuid PRIMARY KEY,
      status text NOT NULL CHECK (status IN ('accepted', 'in-progress', 'completed', 'error', 'cancelled')),
      level text NOT NULL CHECK (level IN ('system', 'patient', 'group')),
      group_id text,
      types text[],
      since timestamptz,
      transaction_time timestamptz NOT NULL,
      request text NOT NULL,
      -- The token's principal (null without authorization): the job reads only what it may, and only its client polls it.
      principal jsonb,
      cursor jsonb NOT NULL DEFAULT '{}',
      exported bigint NOT NULL DEFAULT 0,
      error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw(`CREATE INDEX export_job_open ON export_job (created_at) WHERE status IN ('accepted', 'in-progress')`);
  await knex.raw(`
    CREATE TABLE export_file (
      job_id uuid NOT NULL REFERENCES export_job (id) ON DELETE CASCADE,
      seq integer NOT NULL,
      resource_type text NOT NULL,
      count integer NOT NULL,
      ndjson text NOT NULL,
      PRIMARY KEY (job_id, seq)
    )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS export_file');
  await knex.raw('DROP TABLE IF EXISTS export_job');
}
