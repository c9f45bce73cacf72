import { createHash } from 'node:crypto';
import type { Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { applySearchFilters } from '../search/build-search-sql';
import { paramColumn, quoteIdentifier } from '../search/column-names';
import { type CareDates, patientRecordFilters, patientRecordTypes, supportingTypes } from '../search/patient-record';
import type { SearchRequest } from '../search/search-request';
import { type IndexedParam, indexedParams } from '../search/supported-parameters';
import { inCanonicalOrder } from './canonical-key-order';
import { runSql } from './sql';

/**
 * The four statements of a `$everything` page (see everything-reads.ts). Each spans every
 * type of the compartment (67 in R4) or every supporting type, so planning one costs
 * more than running it (~20 ms against a few): each has one SQL text whatever the
 * patient, `_type`, `_since` or cursor — those are parameters, and the branches a
 * parameter rules out (`? <= ordinal`, `? @> ARRAY[type]`) are one-time filters that
 * PostgreSQL skips without reading — sent as a named prepared statement and run with
 * a generic plan, so each connection plans it once.
 */

/** A position in a record: the type's place in the record's order, and the id. */
export interface RecordKey {
  resourceType: string;
  id: string;
}

export interface RecordRow extends RecordKey {
  resource: Resource;
}

/** What selects a patient's record, besides the patient. */
export interface RecordSelection {
  /** Types to return (all when undefined). */
  types?: ReadonlySet<string>;
  /** ISO instant: updated at or after. */
  since?: string;
  careDates?: CareDates;
}

/** The next `limit` compartment keys after `after` (type and id), in the record's order. */
export async function compartmentKeys(
  db: Knex,
  patientId: string,
  selection: RecordSelection,
  after: RecordKey | undefined,
  limit: number
): Promise<RecordKey[]> {
  const types = patientRecordTypes();
  const from = after ? types.indexOf(after.resourceType) : 0;
  const branches = types.map((type, ordinal) => {
    const branch = db(type).select(db.raw(`${ordinal} AS o, '${type}'::text AS t, id`));
    applySearchFilters(branch, filtersOnly(type, patientRecordFilters(type, patientId, selection.careDates)));
    gate(branch, type, ordinal, selection, from);
    branch.whereRaw(`(?::int <> ${ordinal} OR id > ?::text)`, [from, after?.id ?? '']);
    return branch.orderBy('id').limit(limit);
  });
  const query = db.select('t', 'id').from(db.unionAll(branches, true).as('k')).orderBy([{ column: 'o' }, { column: 'id' }]).limit(limit);
  const rows = await runPrepared<{ t: string; id: string }>(db, 'everything-keys', query);
  return rows.map((r) => ({ resourceType: r.t, id: r.id }));
}

/** The resources at `keys`, in that order; a row deleted since its key was read is left out. */
export async function compartmentContents(db: Knex, keys: readonly RecordKey[]): Promise<RecordRow[]> {
  if (keys.length === 0) return [];
  const query = contentsByIds(db, patientRecordTypes(), keys);
  const rows = await runPrepared<{ t: string; id: string; content: Resource }>(db, 'everything-contents', query);
  const found = new Map(rows.map((r) => [`${r.t}/${r.id}`, r.content]));
  return keys.flatMap((key) => {
    const content = found.get(`${key.resourceType}/${key.id}`);
    return content ? [{ ...key, resource: inCanonicalOrder(content) }] : [];
  });
}

/** Per supporting type: referenced id → whether a resource of the record updated since `_since` refers to it. */
export type RecordReferences = Map<string, Map<string, boolean>>;

/**
 * Every `Type/id` of a supporting type that the record's resources refer to, from the
 * reference columns written with each resource (the edges `_include` follows too).
 */
export async function recordReferences(db: Knex, patientId: string, selection: RecordSelection): Promise<RecordReferences> {
  const wanted = supportingTypes().filter((t) => selection.types === undefined || selection.types.has(t));
  const references: RecordReferences = new Map(wanted.map((t) => [t, new Map()]));
  if (wanted.length === 0) return references;
  const branches = patientRecordTypes().flatMap((type) => {
    const columns = [...indexedParams(type).values()].filter(mayReferToSupporting).map((p) => quoteIdentifier(paramColumn(p.def.code)));
    if (columns.length === 0) return [];
    const branch = db(type).select(
      db.raw(`unnest(${columns.join(' || ')}) AS ref`),
      db.raw('coalesce(last_updated >= ?::timestamptz, false) AS recent', [selection.since ?? null])
    );
    applySearchFilters(branch, filtersOnly(type, patientRecordFilters(type, patientId, selection.careDates)));
    return [branch];
  });
  const query = db
    .select('ref', db.raw('bool_or(recent) AS recent'))
    .from(db.unionAll(branches, true).as('r'))
    .whereRaw(`split_part(ref, '/', 1) = ANY(?::text[]) AND split_part(ref, '/', 3) = ''`, [wanted])
    .groupBy('ref');
  for (const { ref, recent } of await runPrepared<{ ref: string; recent: boolean }>(db, 'everything-references', query)) {
    const [type, id] = ref.split('/');
    references.get(type)?.set(id, recent);
  }
  return references;
}

/**
 * The referenced resources that exist, in the record's order after `after`; with
 * `_since`, those updated since then or referred to by a resource that was.
 */
export async function referencedRows(
  db: Knex,
  references: RecordReferences,
  since: string | undefined,
  after: RecordKey | undefined,
  limit: number
): Promise<RecordRow[]> {
  const types = supportingTypes();
  const from = after ? types.indexOf(after.resourceType) : 0;
  const branches = types.map((type, ordinal) => {
    const ids = references.get(type) ?? new Map<string, boolean>();
    const recent = [...ids].filter(([, r]) => r).map(([id]) => id);
    return db(type)
      .select(db.raw(`${ordinal} AS o, '${type}'::text AS t, id, content`))
      .where('deleted', false)
      .whereRaw('id = ANY(?::text[])', [[...ids.keys()]])
      .whereRaw(`?::int <= ${ordinal}`, [from])
      .whereRaw(`(?::int <> ${ordinal} OR id > ?::text)`, [from, after?.id ?? ''])
      .whereRaw('(?::timestamptz IS NULL OR last_updated >= ?::timestamptz OR id = ANY(?::text[]))', [since ?? null, since ?? null, recent])
      .orderBy('id')
      .limit(limit);
  });
  const query = db.select('t', 'id', 'content').from(db.unionAll(branches, true).as('s')).orderBy([{ column: 'o' }, { column: 'id' }]).limit(limit);
  const rows = await runPrepared<{ t: string; id: string; content: Resource }>(db, 'everything-referenced', query);
  return rows.map((r) => ({ resourceType: r.t, id: r.id, resource: inCanonicalOrder(r.content) }));
}

/** A reference parameter whose declared targets include a supporting type (or any type). */
function mayReferToSupporting(param: IndexedParam): boolean {
  if (param.def.type !== 'reference') return false;
  const targets = param.def.targets;
  return targets.length === 0 || targets.some((t) => t === 'Any' || supportingTypes().includes(t));
}

/** Branches before the cursor's type, of types not asked for, and (with `_since`) older rows are skipped. */
function gate(branch: Knex.QueryBuilder, type: string, ordinal: number, selection: RecordSelection, from: number): void {
  const types = selection.types ? [...selection.types] : patientRecordTypes();
  branch.whereRaw(`?::int <= ${ordinal} AND ?::text[] @> ARRAY['${type}']`, [from, [...types]]);
  branch.whereRaw('(?::timestamptz IS NULL OR last_updated >= ?::timestamptz)', [selection.since ?? null, selection.since ?? null]);
}

function contentsByIds(db: Knex, types: readonly string[], keys: readonly RecordKey[]): Knex.QueryBuilder {
  const ids = new Map<string, string[]>(types.map((t) => [t, []]));
  for (const key of keys) ids.get(key.resourceType)?.push(key.id);
  const branches = types.map((type) =>
    db(type).select(db.raw(`'${type}'::text AS t, id, content`)).where('deleted', false).whereRaw('id = ANY(?::text[])', [ids.get(type) ?? []])
  );
  return db.select('*').from(db.unionAll(branches, true).as('c'));
}

function filtersOnly(resourceType: string, filters: SearchRequest['filters']): SearchRequest {
  return { resourceType, filters, sort: [], count: 0, offset: 0, total: 'none', warnings: [] };
}

/**
 * The builder's SQL as a named prepared statement (the name follows the text, so equal
 * texts share one plan per connection).
 */
async function runPrepared<R extends Record<string, unknown>>(db: Knex, label: string, query: Knex.QueryBuilder): Promise<R[]> {
  const { sql, bindings } = query.toSQL().toNative();
  const name = `${label}:${createHash('sha1').update(sql).digest('base64url').slice(0, 16)}`;
  return (await runSql<R>(db, name, sql, bindings as unknown[])).rows;
}
