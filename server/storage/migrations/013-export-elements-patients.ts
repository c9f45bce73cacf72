import type { Knex } from 'knex';

/**
 * Bulk Data `_elements` (the elements kept, `Type.element` or `element`), `patient` (the
 * patients a Patient or Group export is confined to), and the issues the manifest's error
 * file reports (parameters ignored, patients left out).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE export_job ADD COLUMN IF NOT EXISTS elements text[], ADD COLUMN IF NOT EXISTS patients text[], ADD COLUMN IF NOT EXISTS issues jsonb');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE export_job DROP COLUMN IF EXISTS elements, DROP COLUMN IF EXISTS patients, DROP COLUMN IF EXISTS issues');
}
