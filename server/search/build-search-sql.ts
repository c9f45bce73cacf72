import type { Knex } from 'knex';
import { chainCondition, hasCondition } from './chain-condition';
import { qualifiedColumn } from './column-names';
import { datePointCondition } from './date-condition';
import { cursorCondition, orderByTerm, type SortKey, sortKeyOf } from './page-cursor';
import { pairCondition } from './pair-columns';
import type { SqlCondition } from './parameter-type';
import { placeholders } from './parameter-type';
import type { SearchFilter, SearchRequest } from './search-request';
import { indexedParam } from './supported-parameters';

/** Sort keys that map to fixed columns. */
const SORT_COLUMNS: Record<string, string> = { _lastUpdated: 'last_updated', _id: 'id' };

function orConditions(conditions: SqlCondition[]): SqlCondition {
  // No alternative at all (a functional list holding none of the type) matches nothing.
  if (conditions.length === 0) return { sql: 'false', bindings: [] };
  if (conditions.length === 1) return conditions[0];
  return { sql: `(${conditions.map((c) => c.sql).join(' OR ')})`, bindings: conditions.flatMap((c) => c.bindings) };
}

function andConditions(conditions: SqlCondition[]): SqlCondition {
  if (conditions.length === 0) return { sql: 'true', bindings: [] };
  if (conditions.length === 1) return conditions[0];
  return { sql: `(${conditions.map((c) => c.sql).join(' AND ')})`, bindings: conditions.flatMap((c) => c.bindings) };
}

export function filterCondition(resourceType: string, filter: SearchFilter, tableAlias?: string): SqlCondition {
  const column = (name: string): string => qualifiedColumn(name, tableAlias);
  switch (filter.kind) {
    case 'id': {
      const sql = `${column('id')} IN (${placeholders(filter.ids.length)})`;
      return { sql: filter.not ? `NOT (${sql})` : sql, bindings: filter.ids };
    }
    case 'lastUpdated':
      return orConditions(filter.values.map((v) => datePointCondition(column('last_updated'), v)));
    case 'chain':
      return chainCondition(filter, column, tableAlias, filterCondition);
    case 'has':
      return hasCondition(resourceType, filter, column, tableAlias, filterCondition);
    case 'any':
      return orConditions(filter.filters.map((f) => filterCondition(resourceType, f, tableAlias)));
    case 'all':
      return andConditions(filter.filters.map((f) => filterCondition(resourceType, f, tableAlias)));
    case 'coding-anywhere':
      // The path is a bound value: no `?` of its own in the statement's text.
      return orConditions(
        filter.codings.map((c) => ({
          sql: `jsonb_path_exists(${column('content')}, ?::jsonpath, jsonb_build_object('s', ?::text, 'c', ?::text))`,
          bindings: [CODING_ANYWHERE_PATH, c.system, c.code],
        }))
      );
    case 'not': {
      // Array overlap on a NULL column is NULL, not false: NOT must see false there.
      const inner = filterCondition(resourceType, filter.filter, tableAlias);
      return { sql: `NOT coalesce((${inner.sql}), false)`, bindings: inner.bindings };
    }
    default: {
      const param = indexedParam(resourceType, filter.code);
      // parseSearchRequest only produces filters for indexed parameters.
      if (!param) throw new Error(`No indexed parameter ${resourceType}.${filter.code}`);
      if (filter.kind === 'missing') return param.handler.missing(param, filter.missing, column);
      return param.handler.condition(param, filter, column);
    }
  }
}

/** Any object in the resource, at any depth, with that system and code: a Coding. */
const CODING_ANYWHERE_PATH = '$.** ? (@.system == $s && @.code == $c)';

/** WHERE only: live rows matching every filter. For counts and conditional operations. */
export function applySearchFilters(qb: Knex.QueryBuilder, request: SearchRequest, tableAlias?: string): Knex.QueryBuilder {
  qb.whereRaw(`${qualifiedColumn('deleted', tableAlias)} = false`);
  for (const filter of request.filters) {
    const { sql, bindings } = filterCondition(request.resourceType, filter, tableAlias);
    qb.whereRaw(sql, bindings as Knex.RawBinding[]);
  }
  // Implied by a patient filter and a code filter together, and one index lookup of their
  // matches (search/pair-columns.ts): PostgreSQL prefers it to ANDing their two bitmaps.
  for (const filter of request.filters) {
    if (filter.kind !== 'reference') continue;
    const pair = pairCondition(request.resourceType, filter, request.filters, (name) => qualifiedColumn(name, tableAlias));
    if (!pair) continue;
    qb.whereRaw(pair.sql, pair.bindings as Knex.RawBinding[]);
    break;
  }
  return qb;
}

/**
 * The ORDER BY keys of a search: the `_sort` keys, then `id`, so that the order is total
 * (pages are deterministic, and a keyset cursor names one position). Without `_sort`
 * the order is `id` alone: new server ids are time-ordered (core/ids.ts), so this is
 * creation order, and an update never moves a resource while a client pages.
 */
export function searchSortKeys(request: SearchRequest, tableAlias?: string): SortKey[] {
  const keys: SortKey[] = [];
  let hasId = false;
  for (const rule of request.sort) {
    const column = SORT_COLUMNS[rule.code];
    if (column) {
      if (hasId) continue;
      hasId = column === 'id';
      keys.push({ expression: qualifiedColumn(column, tableAlias), descending: rule.descending, nullsFirst: rule.descending, notNull: true });
      continue;
    }
    if (hasId) continue;
    const param = indexedParam(request.resourceType, rule.code);
    if (!param?.handler.sort) throw new Error(`No sort for ${request.resourceType}.${rule.code}`);
    keys.push(sortKeyOf(param.handler.sort(param, rule.descending, (name) => qualifiedColumn(name, tableAlias))));
  }
  if (!hasId) keys.push({ expression: qualifiedColumn('id', tableAlias), descending: false, nullsFirst: false, notNull: true });
  return keys;
}

/**
 * WHERE and ORDER BY (no LIMIT: storage pages), from the cursor's position when there
 * is one; a `previous` cursor reads the order backwards (storage reverses the rows).
 */
export function applySearch(
  qb: Knex.QueryBuilder,
  request: SearchRequest,
  tableAlias?: string,
  /** Keys after the search's own (a search across types orders by resource type last). */
  extraKeys: readonly SortKey[] = []
): Knex.QueryBuilder {
  applySearchFilters(qb, request, tableAlias);
  const keys = [...searchSortKeys(request, tableAlias), ...extraKeys];
  const reverse = request.cursor?.direction === 'previous';
  if (request.cursor) {
    const { sql, bindings } = cursorCondition(keys, request.cursor);
    qb.whereRaw(sql, bindings as Knex.RawBinding[]);
  }
  for (const key of keys) qb.orderByRaw(orderByTerm(key, reverse));
  return qb;
}
