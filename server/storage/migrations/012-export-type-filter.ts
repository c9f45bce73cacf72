import type { Knex } from 'knex';

/** Bulk Data `_typeFilter`: per resource type, the search queries (ORed) its exported resources must match. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE export_job ADD COLUMN IF NOT EXISTS type_filter jsonb');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE export_job DROP COLUMN IF EXISTS type_filter');
}
