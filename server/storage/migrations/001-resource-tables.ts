import type { Knex } from 'knex';
import { resourceTypes } from '../../validation/structure-definitions';

/**
 * One table per resource type holds the current version (content + search columns);
 * one append-only table holds every version of every resource, so that type- and
 * system-level history are single index scans instead of a union of 146 tables.
 */
export async function up(knex: Knex): Promise<void> {
  for (const type of resourceTypes) {
    await knex.raw(
      `CREATE TABLE IF NOT EXISTS "${type}" (
        id text PRIMARY KEY,
        version_id integer NOT NULL,
        last_updated timestamptz NOT NULL,
        deleted boolean NOT NULL DEFAULT false,
        content jsonb
      )`
    );
    await knex.raw(`CREATE INDEX IF NOT EXISTS "${type}_last_updated_idx" ON "${type}" (last_updated, id)`);
  }
  await knex.raw(
    `CREATE TABLE IF NOT EXISTS resource_history (
      resource_type text NOT NULL,
      id text NOT NULL,
      version_id integer NOT NULL,
      last_updated timestamptz NOT NULL,
      deleted boolean NOT NULL DEFAULT false,
      method text NOT NULL,
      content jsonb,
      PRIMARY KEY (resource_type, id, version_id)
    )`
  );
  await knex.raw('CREATE INDEX IF NOT EXISTS resource_history_last_updated_idx ON resource_history (last_updated)');
  await knex.raw(
    'CREATE INDEX IF NOT EXISTS resource_history_type_last_updated_idx ON resource_history (resource_type, last_updated)'
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS resource_history');
  for (const type of resourceTypes) {
    await knex.raw(`DROP TABLE IF EXISTS "${type}"`);
  }
}
