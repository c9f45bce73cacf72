import type { Knex } from 'knex';

/**
 * Bulk Data `includeAssociatedData` (the Provenance of what is exported): the values a job
 * was asked for, and the Provenance resources a job has written, so that each is in its
 * files once, whether it came as associated data or as a resource of its own type.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE export_job ADD COLUMN IF NOT EXISTS associated text[]');
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS export_provenance (
      job_id uuid NOT NULL REFERENCES export_job (id) ON DELETE CASCADE,
      provenance_id text NOT NULL,
      PRIMARY KEY (job_id, provenance_id)
    )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS export_provenance');
  await knex.raw('ALTER TABLE export_job DROP COLUMN IF EXISTS associated');
}
