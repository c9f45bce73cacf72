import { randomBytes } from 'node:crypto';
import type { Resource } from '@medplum/fhirtypes';
import knexFactory, { type Knex } from 'knex';
import { applySearch } from '../../server/search/build-search-sql';
import { extractIndexValues } from '../../server/search/extract-index-values';
import { indexColumns, requiredExtensions } from '../../server/search/index-columns';
import type { SearchRequest } from '../../server/search/search-request';

/**
 * A throw-away database with resource tables laid out the way storage creates them
 * (fixed columns + `indexColumns()`), so that search tests need nothing from storage.
 */
export interface SearchTestDatabase {
  knex: Knex;
  drop(): Promise<void>;
}

function adminUrl(): string {
  return process.env.TEST_ADMIN_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function createSearchTestDatabase(): Promise<SearchTestDatabase> {
  const name = `search_test_${randomBytes(5).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: adminUrl(), pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE "${name}"`);
  await admin.destroy();
  const knex = knexFactory({ client: 'pg', connection: withDatabase(adminUrl(), name), pool: { min: 0, max: 4 } });
  for (const ext of requiredExtensions()) await knex.raw(`CREATE EXTENSION IF NOT EXISTS ${ext}`);
  return {
    knex,
    drop: async () => {
      await knex.destroy();
      const again = knexFactory({ client: 'pg', connection: adminUrl(), pool: { min: 0, max: 1 } });
      await again.raw(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await again.destroy();
    },
  };
}

/** The DDL storage runs: the fixed columns, then ADD COLUMN / CREATE INDEX per index column. */
export async function createResourceTable(knex: Knex, type: string): Promise<void> {
  await knex.raw(`CREATE TABLE "${type}" (
    id text PRIMARY KEY,
    version_id integer NOT NULL,
    last_updated timestamptz NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    content jsonb
  )`);
  await knex.raw(`CREATE INDEX "${type}_last_updated_idx" ON "${type}" (last_updated, id)`);
  for (const column of indexColumns(type)) {
    await knex.raw(`ALTER TABLE "${type}" ADD COLUMN IF NOT EXISTS "${column.name}" ${column.sqlType}`);
    if (column.indexMethod === 'none') continue;
    const target = column.indexExpression ?? `"${column.name}"`;
    const where = column.indexMethod === 'btree' ? '' : ` WHERE "${column.name}" IS NOT NULL`;
    await knex.raw(
      `CREATE INDEX IF NOT EXISTS "${type}_${column.name}_idx" ON "${type}" USING ${column.indexMethod} (${target})${where}`
    );
  }
}

/** Inserts resources with their index values, as storage's create does. */
export async function insertResources(
  knex: Knex,
  resources: Resource[],
  lastUpdated: (resource: Resource, index: number) => Date = () => new Date()
): Promise<void> {
  const rows = resources.map((resource, i) => ({
    id: resource.id,
    version_id: 1,
    last_updated: lastUpdated(resource, i),
    deleted: false,
    content: JSON.stringify(resource),
    ...extractIndexValues(resource),
  }));
  const byType = new Map<string, typeof rows>();
  rows.forEach((row, i) => {
    const type = resources[i].resourceType;
    byType.set(type, [...(byType.get(type) ?? []), row]);
  });
  for (const [type, typeRows] of byType) {
    for (let i = 0; i < typeRows.length; i += 200) await knex(type).insert(typeRows.slice(i, i + 200));
  }
}

/** Marks a resource deleted the way storage does: content and index values gone. */
export async function markDeleted(knex: Knex, resource: Resource): Promise<void> {
  const cleared = Object.fromEntries(Object.keys(extractIndexValues(resource)).map((k) => [k, null]));
  await knex(resource.resourceType)
    .where({ id: resource.id })
    .update({ deleted: true, content: null, version_id: 2, ...cleared });
}

export async function searchIds(knex: Knex, request: SearchRequest): Promise<string[]> {
  const rows: { id: string }[] = await applySearch(knex(request.resourceType).select('id'), request);
  return rows.map((r) => r.id);
}

/**
 * A fresh test database with the tables of `types`, holding `resources`; those `isDeleted`
 * picks are then deleted, so that every search must also leave deleted rows out.
 */
export async function storeSearchFixture(
  types: readonly string[],
  resources: Resource[],
  isDeleted: (resource: Resource, index: number) => boolean
): Promise<{ db: SearchTestDatabase; live: Resource[] }> {
  const db = await createSearchTestDatabase();
  for (const type of types) await createResourceTable(db.knex, type);
  await insertResources(db.knex, resources);
  const deleted = new Set(resources.filter(isDeleted));
  for (const r of deleted) await markDeleted(db.knex, r);
  return { db, live: resources.filter((r) => !deleted.has(r)) };
}
