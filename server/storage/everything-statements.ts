import type { Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { applySearchFilters } from '../search/build-search-sql';
import { paramColumn, quoteIdentifier } from '../search/column-names';
import { type CareDates, patientRecordFilters, patientRecordTypes, supportingTypes } from '../search/patient-record';
import type { SearchRequest } from '../search/search-request';
import { searchParameterGeneration } from '../search/custom-search-parameter-registry';
import { indexedParams } from '../search/supported-parameters';
import { JSONB_AS_TEXT, lazyResource } from './lazy-resource';
import { runTemplate, type TemplateSlots, type TemplateValues } from './statement-template';

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

/**
 * Which way a page is read from its position: `forward` takes the entries after it, in
 * the record's order; `backward` the entries before it, nearest first (a `previous`
 * page, which the caller turns round). Without a position, forward starts at the
 * record's beginning and backward at its end.
 */
export type Direction = 'forward' | 'backward';

/** The next `limit` compartment keys after `from` (type and id) in the record's order, or (backward) before it, nearest first. */
export async function compartmentKeys(
  db: Knex,
  patientId: string,
  selection: RecordSelection,
  from: RecordKey | undefined,
  limit: number,
  direction: Direction = 'forward'
): Promise<RecordKey[]> {
  const types = patientRecordTypes();
  const way = ways[direction];
  const rows = await runTemplate<{ t: string; id: string }>(
    db,
    `everything-keys:${shapeOf(selection.careDates)}${way.suffix}`,
    (slots) => {
      const branches = types.map((type, ordinal) => {
        const branch = db(type).select(db.raw(`${ordinal} AS o, '${type}'::text AS t, id`));
        applySearchFilters(branch, filtersOnly(type, patientRecordFilters(type, slots.slot('patient'), careDateSlots(selection.careDates, slots))));
        // One-time filters: the branches before the cursor's type and of types not asked for are not run.
        branch.whereRaw(`?::int ${way.typeFrom} ${ordinal} AND ?::text[] @> ARRAY['${type}']`, [slots.slot('from'), slots.arraySlot('types')]);
        branch.whereRaw(`(?::int <> ${ordinal} OR id ${way.idFrom} ?::text)`, [slots.slot('from'), slots.slot('afterId')]);
        branch.whereRaw('(?::timestamptz IS NULL OR last_updated >= ?::timestamptz)', [slots.slot('since'), slots.slot('since')]);
        // No ORDER BY id LIMIT per branch: with a LIMIT it does not know, the generic plan
        // walks the primary key and filters (every row of the table) instead of the GIN lookup.
        return branch;
      });
      return db.select('t', 'id').from(db.unionAll(branches, true).as('k')).orderBy(way.order).limit(slots.numberSlot('limit'));
    },
    {
      patient: patientId,
      from: from ? types.indexOf(from.resourceType) : way.start(types),
      afterId: from?.id ?? '',
      types: selection.types ? [...selection.types] : types,
      since: selection.since ?? null,
      limit,
      ...careDateValues(selection.careDates),
    }
  );
  return rows.map((r) => ({ resourceType: r.t, id: r.id }));
}

/** How many resources the compartment part of the record holds (its `match` entries). */
export async function compartmentCount(db: Knex, patientId: string, selection: RecordSelection): Promise<number> {
  const types = patientRecordTypes();
  const rows = await runTemplate<{ n: number }>(
    db,
    `everything-count:${shapeOf(selection.careDates)}`,
    (slots) => {
      const branches = types.map((type) => {
        const branch = db(type).select(db.raw('1 AS x'));
        applySearchFilters(branch, filtersOnly(type, patientRecordFilters(type, slots.slot('patient'), careDateSlots(selection.careDates, slots))));
        branch.whereRaw(`?::text[] @> ARRAY['${type}']`, [slots.arraySlot('types')]);
        branch.whereRaw('(?::timestamptz IS NULL OR last_updated >= ?::timestamptz)', [slots.slot('since'), slots.slot('since')]);
        return branch;
      });
      return db.select(db.raw('count(*)::int AS n')).from(db.unionAll(branches, true).as('k'));
    },
    {
      patient: patientId,
      types: selection.types ? [...selection.types] : types,
      since: selection.since ?? null,
      ...careDateValues(selection.careDates),
    }
  );
  return rows[0].n;
}

/** The resources at `keys`, in that order; a row deleted since its key was read is left out. */
export async function compartmentContents(db: Knex, keys: readonly RecordKey[]): Promise<RecordRow[]> {
  if (keys.length === 0) return [];
  const types = patientRecordTypes();
  const rows = await runTemplate<{ t: string; id: string; content: string }>(
    db,
    'everything-contents',
    (slots) => {
      const branches = types.map((type) =>
        // Received as text (JSONB_AS_TEXT): lazy-resource.ts parses only what is read.
        db(type).select(db.raw(`'${type}'::text AS t, id, content`)).where('deleted', false).whereRaw('id = ANY(?::text[])', [slots.arraySlot(`ids:${type}`)])
      );
      return db.select('*').from(db.unionAll(branches, true).as('c'));
    },
    idsByType(types, keys.map((k) => [k.resourceType, k.id])),
    JSONB_AS_TEXT
  );
  const found = new Map(rows.map((r) => [`${r.t}/${r.id}`, r.content]));
  return keys.flatMap((key) => {
    const content = found.get(`${key.resourceType}/${key.id}`);
    return content ? [{ ...key, resource: lazyResource(content, key.resourceType) }] : [];
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
  const rows = await runTemplate<{ ref: string; recent: boolean }>(
    db,
    `everything-references:${shapeOf(selection.careDates)}:${searchParameterGeneration()}`,
    (slots) => {
      const branches = patientRecordTypes().flatMap((type) => {
        const columns = referenceColumns(type);
        if (columns.length === 0) return [];
        const branch = db(type).select(
          db.raw(`unnest(${columns.join(' || ')}) AS ref`),
          db.raw('coalesce(last_updated >= ?::timestamptz, false) AS recent', [slots.slot('since')])
        );
        applySearchFilters(branch, filtersOnly(type, patientRecordFilters(type, slots.slot('patient'), careDateSlots(selection.careDates, slots))));
        return [branch];
      });
      return db
        .select('ref', db.raw('bool_or(recent) AS recent'))
        .from(db.unionAll(branches, true).as('r'))
        .whereRaw(`split_part(ref, '/', 1) = ANY(?::text[]) AND split_part(ref, '/', 3) = ''`, [slots.arraySlot('wanted')])
        .groupBy('ref');
    },
    { patient: patientId, since: selection.since ?? null, wanted, ...careDateValues(selection.careDates) }
  );
  for (const { ref, recent } of rows) {
    const [type, id] = ref.split('/');
    references.get(type)?.set(id, recent);
  }
  return references;
}

/**
 * The referenced resources that exist, in the record's order after `from` (backward:
 * before it, nearest first); with `_since`, those updated since then or referred to by
 * a resource that was.
 */
export async function referencedRows(
  db: Knex,
  references: RecordReferences,
  since: string | undefined,
  from: RecordKey | undefined,
  limit: number,
  direction: Direction = 'forward'
): Promise<RecordRow[]> {
  const types = supportingTypes();
  const way = ways[direction];
  const all = [...references].flatMap(([type, ids]) => [...ids.keys()].map((id): [string, string] => [type, id]));
  const recent = [...references].flatMap(([type, ids]) => [...ids].filter(([, r]) => r).map(([id]): [string, string] => [type, id]));
  const rows = await runTemplate<{ t: string; id: string; content: string }>(
    db,
    `everything-referenced${way.suffix}`,
    (slots) => {
      const branches = types.map((type, ordinal) =>
        db(type)
          .select(db.raw(`${ordinal} AS o, '${type}'::text AS t, id, content`))
          .where('deleted', false)
          .whereRaw('id = ANY(?::text[])', [slots.arraySlot(`ids:${type}`)])
          .whereRaw(`?::int ${way.typeFrom} ${ordinal}`, [slots.slot('from')])
          .whereRaw(`(?::int <> ${ordinal} OR id ${way.idFrom} ?::text)`, [slots.slot('from'), slots.slot('afterId')])
          .whereRaw('(?::timestamptz IS NULL OR last_updated >= ?::timestamptz OR id = ANY(?::text[]))', [
            slots.slot('since'),
            slots.slot('since'),
            slots.arraySlot(`recent:${type}`),
          ])
          .orderBy('id', way.order[1].order)
          .limit(slots.numberSlot('limit'))
      );
      return db.select('t', 'id', 'content').from(db.unionAll(branches, true).as('s')).orderBy(way.order).limit(slots.numberSlot('limit'));
    },
    {
      ...idsByType(types, all),
      ...Object.fromEntries(Object.entries(idsByType(types, recent)).map(([k, v]) => [`recent:${k.slice('ids:'.length)}`, v])),
      from: from ? types.indexOf(from.resourceType) : way.start(types),
      afterId: from?.id ?? '',
      since: since ?? null,
      limit,
    },
    JSONB_AS_TEXT
  );
  return rows.map((r) => ({ resourceType: r.t, id: r.id, resource: lazyResource(r.content, r.t) }));
}

/**
 * The SQL of each direction: which types and ids come after the position (the branches
 * of the types before it are one-time filters PostgreSQL skips), the order, and where
 * a read without a position starts (backward: past the last type, so no id is excluded).
 */
const ways: Record<Direction, { suffix: string; typeFrom: string; idFrom: string; order: { column: string; order: 'asc' | 'desc' }[]; start: (types: readonly string[]) => number }> = {
  forward: { suffix: '', typeFrom: '<=', idFrom: '>', order: [{ column: 'o', order: 'asc' }, { column: 'id', order: 'asc' }], start: () => 0 },
  backward: { suffix: ':b', typeFrom: '>=', idFrom: '<', order: [{ column: 'o', order: 'desc' }, { column: 'id', order: 'desc' }], start: (types) => types.length },
};

/** The reference columns of `type` whose declared targets include a supporting type (or any type). */
function referenceColumns(type: string): string[] {
  const supporting = new Set(supportingTypes());
  return [...indexedParams(type).values()]
    .filter((p) => p.def.type === 'reference' && (p.def.targets.length === 0 || p.def.targets.some((t) => t === 'Any' || supporting.has(t))))
    .map((p) => quoteIdentifier(paramColumn(p.def.code)));
}

/** `ids:<Type>` → the ids of that type among `keys`, for every type (empty arrays included). */
function idsByType(types: readonly string[], keys: Iterable<[string, string]>): Record<string, string[]> {
  const ids: Record<string, string[]> = Object.fromEntries(types.map((t) => [`ids:${t}`, []]));
  for (const [type, id] of keys) ids[`ids:${type}`]?.push(id);
  return ids;
}

/** The care-date bounds given, as slots (which bounds are given is part of a statement's shape). */
function careDateSlots(careDates: CareDates | undefined, slots: TemplateSlots): CareDates {
  return { ...(careDates?.from ? { from: slots.slot('careFrom') } : {}), ...(careDates?.to ? { to: slots.slot('careTo') } : {}) };
}

function careDateValues(careDates: CareDates | undefined): TemplateValues {
  return { ...(careDates?.from ? { careFrom: careDates.from } : {}), ...(careDates?.to ? { careTo: careDates.to } : {}) };
}

function shapeOf(careDates: CareDates | undefined): string {
  return `${careDates?.from ? 'f' : ''}${careDates?.to ? 't' : ''}`;
}

function filtersOnly(resourceType: string, filters: SearchRequest['filters']): SearchRequest {
  return { resourceType, filters, sort: [], count: 0, offset: 0, total: 'none', warnings: [] };
}
