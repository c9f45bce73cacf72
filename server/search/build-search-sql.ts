import type { Knex } from 'knex';
import { chainCondition, hasCondition } from './chain-condition';
import { qualifiedColumn } from './column-names';
import { datePointCondition } from './date-condition';
import type { SqlCondition } from './parameter-type';
import { placeholders } from './parameter-type';
import type { SearchFilter, SearchRequest } from './search-request';
import { indexedParam } from './supported-parameters';

/** Sort keys that map to fixed columns. */
const SORT_COLUMNS: Record<string, string> = { _lastUpdated: 'last_updated', _id: 'id' };

function orConditions(conditions: SqlCondition[]): SqlCondition {
  if (conditions.length === 1) return conditions[0];
  return { sql: `(${conditions.map((c) => c.sql).join(' OR ')})`, bindings: conditions.flatMap((c) => c.bindings) };
}

function filterCondition(resourceType: string, filter: SearchFilter, tableAlias?: string): SqlCondition {
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
    default: {
      const param = indexedParam(resourceType, filter.code);
      // parseSearchRequest only produces filters for indexed parameters.
      if (!param) throw new Error(`No indexed parameter ${resourceType}.${filter.code}`);
      if (filter.kind === 'missing') return param.handler.missing(param, filter.missing, column);
      return param.handler.condition(param, filter, column);
    }
  }
}

/** WHERE only: live rows matching every filter. For counts and conditional operations. */
export function applySearchFilters(qb: Knex.QueryBuilder, request: SearchRequest, tableAlias?: string): Knex.QueryBuilder {
  qb.whereRaw(`${qualifiedColumn('deleted', tableAlias)} = false`);
  for (const filter of request.filters) {
    const { sql, bindings } = filterCondition(request.resourceType, filter, tableAlias);
    qb.whereRaw(sql, bindings as Knex.RawBinding[]);
  }
  return qb;
}

/**
 * WHERE and ORDER BY (no LIMIT/OFFSET: storage pages). The order always ends in `id`,
 * so that pages are deterministic even between rows with equal sort values.
 */
export function applySearch(qb: Knex.QueryBuilder, request: SearchRequest, tableAlias?: string): Knex.QueryBuilder {
  applySearchFilters(qb, request, tableAlias);
  const rules = request.sort.length > 0 ? request.sort : [{ code: '_lastUpdated', descending: false }];
  let hasId = false;
  for (const rule of rules) {
    const column = SORT_COLUMNS[rule.code];
    if (column) {
      hasId ||= column === 'id';
      qb.orderByRaw(`${qualifiedColumn(column, tableAlias)} ${rule.descending ? 'DESC' : 'ASC'}`);
      continue;
    }
    const param = indexedParam(request.resourceType, rule.code);
    if (!param?.handler.sort) throw new Error(`No sort for ${request.resourceType}.${rule.code}`);
    qb.orderByRaw(param.handler.sort(param, rule.descending, (name) => qualifiedColumn(name, tableAlias)));
  }
  if (!hasId) qb.orderByRaw(`${qualifiedColumn('id', tableAlias)} ASC`);
  return qb;
}
