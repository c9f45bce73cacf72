import type { Coding, Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { applySearch, applySearchFilters, filterCondition, searchSortKeys } from '../search/build-search-sql';
import { quoteIdentifier } from '../search/column-names';
import { orderByTerm, type PageCursor, type SortKey } from '../search/page-cursor';
import { pairCondition } from '../search/pair-columns';
import type { SqlCondition } from '../search/parameter-type';
import type { SearchFilter, SearchRequest } from '../search/search-request';
import { JSONB_AS_TEXT, lazyResource } from './lazy-resource';
import { genericPlans } from './generic-plans';
import { preparedShapeName } from './prepared-shapes';
import { runSql } from './sql';

/**
 * The SQL of the repository's search reads: one page of matches (with the sort key
 * values its cursors need), across types, and counts. Only Repository calls these; they
 * expect chains already resolved (Repository.resolveChains).
 */

export interface SearchPage {
  resources: Resource[];
  /** true when more matches exist after this page. */
  hasMore: boolean;
  /** Where the next page starts (when `hasMore`). */
  next?: PageCursor;
  /** Where the previous page ends (when this is not the first page). */
  previous?: PageCursor;
}

/** A matched resource with its sort key values as text (the id and, across types, the type last). */
interface KeyedRow {
  resource: Resource;
  keys: (string | null)[];
}

/** How many candidates per wanted row `_has` probes before it collects instead. */
const HAS_PROBE_WINDOW = 4;

/**
 * A search narrowed by a reference (`patient=`, a resolved chain) collects at most this
 * many matches before ordering them; beyond it, the usual plan runs (see findNarrow).
 */
const NARROW_MATCHES = 10000;

/** A reference to at most this many patients drives a narrowed search alone (see narrowMatches). */
const DRIVING_PATIENTS = 5;

/** `_total=estimate` counts exactly when PostgreSQL expects at most this many matches. */
const EXACT_COUNT_BELOW = 10000;

/**
 * One page of `requests` (one per type; several for a system search): `count + 1` rows
 * say whether a next page exists; a `previous` cursor reads backwards, so the rows are
 * turned round and "more" means "more before".
 */
export async function readPage(knex: Knex, requests: readonly SearchRequest[]): Promise<SearchPage> {
  const [request] = requests;
  const limit = request.count + 1;
  const rows =
    requests.length === 1 ? await findWithKeys(knex, request, request.offset, limit) : await findAcross(knex, requests, request.offset, limit);
  const more = rows.length > request.count;
  const page = rows.slice(0, request.count);
  const backwards = request.cursor?.direction === 'previous';
  if (backwards) page.reverse();
  const first = page[0];
  const last = page[page.length - 1];
  const hasMore = backwards ? page.length > 0 : more;
  const hasPrevious = backwards ? more : (request.cursor !== undefined || request.offset > 0) && page.length > 0;
  return {
    resources: page.map((r) => r.resource),
    hasMore,
    next: hasMore && last ? { direction: 'next', values: last.keys } : undefined,
    previous: hasPrevious && first ? { direction: 'previous', values: first.keys } : undefined,
  };
}

/** Live resources matching `request`, in its order, without cursors (includes, chain targets). */
export async function findResources(knex: Knex, request: SearchRequest, offset: number, limit: number): Promise<Resource[]> {
  return (await findWithKeys(knex, request, offset, limit)).map((r) => r.resource);
}

export async function countMatches(knex: Knex, request: SearchRequest): Promise<number> {
  const query = knex(request.resourceType).count<{ count: number }[]>('* as count');
  applySearchFilters(query, request);
  const [row] = await query;
  return Number(row.count);
}

/**
 * `_total=estimate`: PostgreSQL's row estimate for the filters when it is large (a
 * count would read every match), an exact count when it is small enough to be cheap.
 */
export async function estimateMatches(knex: Knex, request: SearchRequest): Promise<number> {
  const query = knex(request.resourceType).select(knex.raw('1'));
  applySearchFilters(query, request);
  // The builder as a binding: knex inlines it with its own bindings (and `@\\?` escapes).
  const result = await knex.raw('EXPLAIN (FORMAT JSON) SELECT * FROM ? AS q', [query]);
  const plan = (result as { rows: { 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }[] }).rows[0]['QUERY PLAN'][0].Plan;
  return plan['Plan Rows'] > EXACT_COUNT_BELOW ? Math.round(plan['Plan Rows']) : countMatches(knex, request);
}

/** Adds `key` values as text columns `__k0`, `__k1`, … for the cursors. */
function selectKeys(knex: Knex, query: Knex.QueryBuilder, keys: readonly SortKey[]): void {
  keys.forEach((key, i) => query.select(knex.raw(`(${key.expression})::text AS "__k${i}"`)));
}

/**
 * Runs a search's statement with its jsonb `content` received as PostgreSQL's text
 * (JSONB_AS_TEXT; lazy-resource.ts: most of it is never parsed): unnamed (planned for its
 * values) unless `name`.
 */
async function contentRows<R extends Record<string, unknown>>(knex: Knex, statement: Knex.SqlNative, name = ''): Promise<R[]> {
  // A named shape fixes its plan: it runs with the generic one (generic-plans.ts).
  return (await runSql<R>(name ? genericPlans(knex) : knex, name, statement.sql, statement.bindings as unknown[], JSONB_AS_TEXT)).rows;
}

/** `resourceType` for rows of one type; across types, the last key is the type (findAcross). */
function keyedRows(rows: Record<string, unknown>[], keyCount: number, resourceType?: string): KeyedRow[] {
  return rows.map((row) => ({
    resource: lazyResource(row.content as string, resourceType ?? (row[`__k${keyCount - 1}`] as string)),
    keys: Array.from({ length: keyCount }, (_, i) => row[`__k${i}`] as string | null),
  }));
}

async function findWithKeys(knex: Knex, request: SearchRequest, offset: number, limit: number): Promise<KeyedRow[]> {
  if (offset === 0 && request.filters.some((f) => f.kind === 'has')) {
    const probed = await findByProbingHas(knex, request, limit);
    if (probed) return probed;
  }
  if (request.sort.length === 0 && request.filters.some((f) => f.kind === 'reference' || patientsNamed(f) !== undefined)) {
    const narrow = await findNarrow(knex, request, offset, limit);
    if (narrow) return narrow;
  }
  return findOrdered(knex, request, offset, limit);
}

async function findOrdered(knex: Knex, request: SearchRequest, offset: number, limit: number): Promise<KeyedRow[]> {
  const keys = searchSortKeys(request);
  // A few patients' rows in another order than `id` (`Encounter?patient=X&_sort=-date`): sorted from their own rows, a plan fixed by the shape.
  const fenced = request.sort.length > 0 ? patientRows(knex, request) : undefined;
  const query = fenced ? fenced.from.select('content') : knex(request.resourceType).select('content');
  selectKeys(knex, query, keys);
  applySearch(query, fenced ? { ...request, filters: fenced.others } : request);
  query.offset(offset).limit(limit);
  const statement = query.toSQL().toNative();
  // Reads by id (an _include's targets, `_id=`): the primary key decides the plan whatever the values, so a generic plan is safe.
  const name = fenced
    ? preparedShapeName('patient', statement.sql)
    : request.filters.some((f) => f.kind === 'id' && !f.not)
      ? preparedShapeName('ids', statement.sql)
      : undefined;
  return keyedRows(await contentRows(knex, statement, name), keys.length, request.resourceType);
}

/**
 * The page, when the matches are few: `patient=X` or a chain resolved to a few
 * targets. PostgreSQL's plan for "first rows in id order" walks the primary key and
 * tests each row, expecting the matches spread evenly; but a patient's resources are
 * stored together and their ids (time-ordered, given at creation) are adjacent, so a
 * patient written late made the walk read nearly the whole table (27 ms at 43k
 * Observations, growing with it). Here the matches are collected through their own
 * index with no order (at most NARROW_MATCHES ids), then ordered; undefined when there
 * are more, and the usual query runs. Only for the default order (`id`, one key).
 * A patient's compartment (`Patient/X/Observation`, or a patient's token, which ORs the
 * compartment's references) is narrowed the same way.
 */
async function findNarrow(knex: Knex, request: SearchRequest, offset: number, limit: number): Promise<KeyedRow[] | undefined> {
  const keys = searchSortKeys(request);
  const reverse = request.cursor?.direction === 'previous';
  const order = orderByTerm(keys[0], reverse);
  // One statement, so the page is exactly the matches of one snapshot; the page's rows are
  // then read by primary key (the filters are not evaluated a second time).
  const statement = knex
    .raw(
      `WITH m AS MATERIALIZED (?), c AS (SELECT count(*)::int AS n FROM m) ` +
        `SELECT c.n, r.* FROM c LEFT JOIN LATERAL (SELECT content, (${keys[0].expression})::text AS "__k0" FROM ${quoteIdentifier(request.resourceType)} ` +
        `WHERE c.n <= ${NARROW_MATCHES} AND id IN (SELECT id FROM m ORDER BY ${order} OFFSET ? LIMIT ?)) AS r ON true ` +
        `ORDER BY r."__k0" ${reverse ? 'DESC' : 'ASC'}`,
      [narrowMatches(knex, request), offset, limit]
    )
    .toSQL()
    .toNative();
  // Its shape fences the plan (a materialized CTE over one index), so a generic plan is as good as a custom one.
  const name = preparedShapeName('narrow', statement.sql);
  // Without a name (past the bound), pg sends it unnamed: planned every time.
  const rows = await contentRows<{ n: number; content: unknown; __k0: string | null }>(knex, statement, name);
  if (rows[0].n > NARROW_MATCHES) return undefined;
  return keyedRows(rows.filter((r) => r.content !== null), 1, request.resourceType);
}

/**
 * The CTE `m`: the ids of at most NARROW_MATCHES + 1 matches, in no order.
 *
 * With other filters beside a patient reference, PostgreSQL ANDs the bitmaps of their
 * indexes: for `Observation?patient=X&code=8867-4` it read all 16,310 heart-rate entries of
 * the code's GIN index (10 ms at 10× Synthea: a GIN bitmap costs ~0.6 µs per entry, which
 * the planner does not see) to narrow the patient's 1,544 rows, which it can test one by
 * one in ~1 ms. So the patient's rows are read through the reference's index alone and
 * the other filters tested on them (`OFFSET 0` keeps PostgreSQL from merging the subquery
 * into the outer query). Only for a few patients: one patient's record is bounded (a few
 * thousand resources of a type), while an organisation's or practitioner's need not be,
 * and there the bitmaps' intersection is the better plan. Where the type has a pair
 * column for the patient and a token filter (Observation's patient + code), the rows
 * come from that column's index instead: only those matching both, not all the patient's.
 */
function narrowMatches(knex: Knex, request: SearchRequest): Knex.QueryBuilder {
  const fenced = patientRows(knex, request);
  const query = fenced && fenced.others.length > 0
    ? applySearch(fenced.from.select('id'), { ...request, filters: fenced.others })
    : applySearch(knex(request.resourceType).select('id'), request);
  return query.clearOrder().limit(NARROW_MATCHES + 1);
}

/**
 * A query over the rows of the few patients a search is confined to, read through the
 * patient reference's index alone (or a pair column's, with a token filter among the
 * others: search/pair-columns.ts), behind `OFFSET 0` so that PostgreSQL can neither merge
 * the other filters' indexes in nor walk a sort index instead: the plan is the same for
 * every value, so it can be prepared once and kept generic. `others`: the filters left to
 * apply on those rows. Undefined without such a filter.
 */
function patientRows(knex: Knex, request: SearchRequest): { from: Knex.QueryBuilder; others: SearchFilter[] } | undefined {
  const table = request.resourceType;
  const driving = request.filters.find((f) => (patientsNamed(f)?.size ?? Infinity) <= DRIVING_PATIENTS);
  if (!driving) return undefined;
  const others = request.filters.filter((f) => f !== driving);
  const paired = withPairs(table, driving, others);
  const rows = paired.pairs > 0
    ? knex(table).select('*').whereRaw(paired.condition.sql, paired.condition.bindings as Knex.RawBinding[])
    : applySearchFilters(knex(table).select('*'), { ...request, filters: [driving] });
  // Aliased as the table, so that the filters' column names resolve to the subquery's.
  return { from: knex.from(knex.raw('((?) OFFSET 0) AS ??', [rows, table])), others };
}

/**
 * The driving filter's condition with each reference to patients that has a pair with
 * a token filter among `others` replaced by the pair's lookup: `patient=X`, or the
 * `subject=X` branch of a compartment's `subject=X OR performer=X`.
 */
function withPairs(table: string, driving: SearchFilter, others: readonly SearchFilter[]): { condition: SqlCondition; pairs: number } {
  if (driving.kind === 'reference') {
    const pair = pairCondition(table, driving, others, quoteIdentifier);
    if (pair) return { condition: pair, pairs: 1 };
  }
  if (driving.kind === 'any') {
    const parts = driving.filters.map((f) => withPairs(table, f, others));
    return {
      condition: { sql: `(${parts.map((p) => p.condition.sql).join(' OR ')})`, bindings: parts.flatMap((p) => p.condition.bindings) },
      pairs: parts.reduce((n, p) => n + p.pairs, 0),
    };
  }
  return { condition: filterCondition(table, driving), pairs: 0 };
}

/**
 * The patients a filter confines to, when it is only references to patients: `patient=X`,
 * or the compartment's `subject=X OR performer=X` that a compartment search
 * (`Patient/X/Observation`) and a patient's token (access/patient-confinement.ts) add,
 * also ORed over several patients. Undefined for anything else.
 */
function patientsNamed(filter: SearchFilter, into = new Set<string>()): Set<string> | undefined {
  if (filter.kind === 'reference') {
    if (!filter.entries.every((e) => e.startsWith('Patient/'))) return undefined;
    for (const entry of filter.entries) into.add(entry);
    return into;
  }
  if (filter.kind !== 'any' || filter.filters.length === 0) return undefined;
  for (const inner of filter.filters) if (!patientsNamed(inner, into)) return undefined;
  return into;
}

/**
 * `_has` as written collects every matching source resource's reference before the
 * first row is returned, so its cost grows with the sources (all body-height
 * Observations for `Patient?_has:Observation:patient:code=8302-2`). When many
 * candidates qualify, walking the candidates in order and probing each is cheaper and
 * does not grow with the data: try that on the first HAS_PROBE_WINDOW × limit
 * candidates; if they hold a full page, that page is exact (it is the first `limit`
 * in order), otherwise undefined and the caller runs the collecting form.
 */
async function findByProbingHas(knex: Knex, request: SearchRequest, limit: number): Promise<KeyedRow[] | undefined> {
  const window = knex(request.resourceType).select('*');
  applySearch(window, { ...request, filters: request.filters.filter((f) => f.kind !== 'has') });
  window.limit(limit * HAS_PROBE_WINDOW);
  const alias = 'candidate';
  const probing: SearchRequest = {
    ...request,
    filters: request.filters.filter((f) => f.kind === 'has').map((f) => ({ ...f, probe: true })),
  };
  const keys = searchSortKeys(probing, alias);
  const query = knex.select(knex.raw('?? AS content', [`${alias}.content`])).from(window.as(alias));
  selectKeys(knex, query, keys);
  applySearch(query, probing, alias);
  const rows = await contentRows(knex, query.limit(limit).toSQL().toNative());
  return rows.length === limit ? keyedRows(rows, keys.length, request.resourceType) : undefined;
}

/**
 * `findWithKeys` for several types: each type's first rows, merged by PostgreSQL in the
 * shared order, then by resource type, so that a cursor names one position across all.
 */
async function findAcross(knex: Knex, requests: readonly SearchRequest[], offset: number, limit: number): Promise<KeyedRow[]> {
  const typeKey = (type: string): SortKey => ({ expression: `'${type}'::text`, descending: false, nullsFirst: false, notNull: true });
  const outerKeys = [...searchSortKeys(requests[0]), typeKey('')].map((key, i) => ({ ...key, expression: `"__s${i}"` }));
  const branches = requests.map((request) => {
    const keys = [...searchSortKeys(request), typeKey(request.resourceType)];
    const query = knex(request.resourceType).select('content');
    // Typed (`__s`) for the outer ORDER BY, text (`__k`) for the cursor.
    keys.forEach((key, i) => query.select(knex.raw(`${key.expression} AS "__s${i}"`)));
    selectKeys(knex, query, keys);
    applySearch(query, request, undefined, [typeKey(request.resourceType)]);
    return query.limit(offset + limit);
  });
  const reverse = requests[0].cursor?.direction === 'previous';
  const query = knex.select('*').from(knex.unionAll(branches, true).as('u'));
  for (const key of outerKeys) query.orderByRaw(orderByTerm(key, reverse));
  return keyedRows(await contentRows(knex, query.offset(offset).limit(limit).toSQL().toNative()), outerKeys.length);
}

/** The profiles, tags and security labels on the resources a search matches ($meta at type and system level). */
export interface LabelsInUse {
  profiles: string[];
  tags: Coding[];
  security: Coding[];
}

/**
 * One scan of the matches' `meta`: each profile once, each tag and security label once by
 * system and code (the meta operations' identity; a display or version they carry is one
 * of those in use). The matches themselves are never read out.
 */
export async function labelsInUse(knex: Knex, request: SearchRequest): Promise<LabelsInUse> {
  const matches = knex(request.resourceType).select(knex.raw(`content->'meta' AS meta`));
  applySearchFilters(matches, request);
  const { rows } = await knex.raw<{ rows: { kind: string; system: string | null; code: string | null; display: string | null; version: string | null }[] }>(
    `SELECT x.kind, x.label->>'system' AS system, x.label->>'code' AS code, min(x.label->>'display') AS display, min(x.label->>'version') AS version
       FROM ? AS m
       CROSS JOIN LATERAL (
         SELECT 'profile' AS kind, jsonb_build_object('code', p) AS label FROM jsonb_array_elements_text(m.meta->'profile') p
         UNION ALL SELECT 'tag', t FROM jsonb_array_elements(m.meta->'tag') t
         UNION ALL SELECT 'security', s FROM jsonb_array_elements(m.meta->'security') s
       ) x
      GROUP BY 1, 2, 3
      ORDER BY 1, 2, 3`,
    [matches]
  );
  const coding = (r: (typeof rows)[number]): Coding => {
    const c: Coding = {};
    if (r.system !== null) c.system = r.system;
    if (r.version !== null) c.version = r.version;
    if (r.code !== null) c.code = r.code;
    if (r.display !== null) c.display = r.display;
    return c;
  };
  return {
    profiles: rows.filter((r) => r.kind === 'profile').map((r) => r.code as string),
    tags: rows.filter((r) => r.kind === 'tag').map(coding),
    security: rows.filter((r) => r.kind === 'security').map(coding),
  };
}
