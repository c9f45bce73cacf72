import { badRequest } from '../core/outcome';
import { paramColumn } from './column-names';
import type { TypedNode } from './compile-path-expression';
import type { NumberSearchValue } from './number-search-value';
import { parseNumberSearchValue } from './number-search-value';
import type { ParameterType, SqlCondition } from './parameter-type';
import { columnMissing } from './parameter-type';
import { unescapeSearchValue } from './search-value-escaping';

/**
 * Number parameters (R4 search.html#number): one `numeric[]` column per parameter, its
 * values sorted ascending (btree: `_sort` ascending is an index order). A resource
 * matches when any of its values matches; the values are exact points (a stored
 * decimal's own precision is not widened). Number parameters exist only on rarely
 * searched types (RiskAssessment, MolecularSequence, ChargeItem), so the condition is
 * an `unnest` over the row's array rather than a second index.
 */
export interface NumberFilter {
  kind: 'number';
  code: string;
  values: NumberSearchValue[];
}

export function numberValues(nodes: readonly TypedNode[]): number[] | null {
  const values = new Set<number>();
  for (const { value } of nodes) if (typeof value === 'number' && Number.isFinite(value)) values.add(value);
  return values.size > 0 ? [...values].sort((a, b) => a - b) : null;
}

/** The condition on one numeric point `v` (SQL expression) for one search value. */
export function numberPointCondition(v: string, value: NumberSearchValue): SqlCondition {
  const { exact, low, high } = value;
  switch (value.prefix) {
    case 'eq':
      return { sql: `(${v} >= ?::numeric AND ${v} < ?::numeric)`, bindings: [low, high] };
    case 'ne':
      return { sql: `(${v} < ?::numeric OR ${v} >= ?::numeric)`, bindings: [low, high] };
    case 'gt':
    case 'sa':
      return { sql: `${v} > ?::numeric`, bindings: [exact] };
    case 'lt':
    case 'eb':
      return { sql: `${v} < ?::numeric`, bindings: [exact] };
    case 'ge':
      return { sql: `${v} >= ?::numeric`, bindings: [exact] };
    case 'le':
      return { sql: `${v} <= ?::numeric`, bindings: [exact] };
    case 'ap':
      return { sql: `(${v} >= ?::numeric AND ${v} <= ?::numeric)`, bindings: [value.approxLow, value.approxHigh] };
  }
}

export const numberParameter: ParameterType = {
  columns(param) {
    return [{ name: paramColumn(param.def.code), sqlType: 'numeric[]', indexMethod: 'btree' }];
  },

  extract(param, nodes, out) {
    out[paramColumn(param.def.code)] = numberValues(nodes);
  },

  parse(param, modifier, values): NumberFilter {
    const code = param.def.code;
    if (modifier !== undefined) throw badRequest(`Modifier :${modifier} is not supported for number parameter ${code}`, code);
    return { kind: 'number', code, values: values.map((v) => parseNumberSearchValue(code, unescapeSearchValue(v))) };
  },

  condition(param, filter, column) {
    if (filter.kind !== 'number') throw new Error(`number parameter cannot apply a ${filter.kind} filter`);
    const conditions = filter.values.map((v) => numberPointCondition('n.v', v));
    return {
      sql: `EXISTS (SELECT 1 FROM unnest(${column(paramColumn(param.def.code))}) AS n(v) WHERE ${conditions.map((c) => c.sql).join(' OR ')})`,
      bindings: conditions.flatMap((c) => c.bindings),
    };
  },

  missing(param, missing, column) {
    return columnMissing(column(paramColumn(param.def.code)), missing);
  },

  // Ascending by the smallest value (the sorted array's order), descending by the largest.
  sort(param, descending, column) {
    const c = column(paramColumn(param.def.code));
    return descending ? `${c}[array_upper(${c}, 1)] DESC NULLS LAST` : `${c} ASC NULLS LAST`;
  },
};
