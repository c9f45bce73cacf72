import type { Knex } from 'knex';

/**
 * Patient- and Group-level exports read one patient's compartment after another; a
 * resource in several of them (a Group of members, an Observation a patient performed on
 * another) is written once per export: the resources written so far that belong to more
 * than one patient (`Type/id`).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS export_written (
      job_id uuid NOT NULL REFERENCES export_job (id) ON DELETE CASCADE,
      resource text NOT NULL,
      PRIMARY KEY (job_id, resource)
    )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS export_written');
}
