import { badRequest } from '../core/outcome';
import { paramColumn } from './column-names';
import type { NumberSearchValue } from './number-search-value';
import { parseNumberSearchValue } from './number-search-value';
import type { ParameterType } from './parameter-type';
import { columnMissing } from './parameter-type';
import { quantityIndexValues } from './quantity-index-values';
import { splitUnescaped, unescapeSearchValue } from './search-value-escaping';

/**
 * Quantity parameters (R4 search.html#quantity): one jsonb column per parameter, an
 * array of `{v, w, s, c, u}` (see quantity-index-values.ts), with a GIN
 * `jsonb_path_ops` index. A search is one `@?` jsonpath over the array, so that the
 * number, system and code must hold for the SAME element; the index serves the unit
 * and code equalities, and `Observation?code=X&value-quantity=gt100` is the code
 * column's GIN index plus a recheck of the jsonpath on those rows.
 *
 * Prefixes over a stored range [v, w] (a point when v = w; R4's range semantics):
 * eq: [v, w] inside the precision range; ne: not eq; gt: w > x; ge: w >= x; lt: v < x;
 * le: v <= x; sa: v > x; eb: w < x; ap: overlaps the ±10% range.
 */
export interface QuantitySearchValue {
  number: NumberSearchValue;
  /** undefined: any system; with `code`: system and code must match. */
  system?: string;
  /** `value||code` (no system) matches the code or the unit. */
  code?: string;
}

export interface QuantityFilter {
  kind: 'quantity';
  code: string;
  values: QuantitySearchValue[];
}

export function parseQuantitySearchValue(code: string, raw: string): QuantitySearchValue {
  const parts = splitUnescaped(raw, '|');
  if (parts.length !== 1 && parts.length !== 3) {
    throw badRequest(`${code} needs [prefix]number or [prefix]number|system|code, got '${raw}'`, code);
  }
  const number = parseNumberSearchValue(code, unescapeSearchValue(parts[0]));
  if (parts.length === 1) return { number };
  const system = unescapeSearchValue(parts[1]);
  const unit = unescapeSearchValue(parts[2]);
  return { number, system: system === '' ? undefined : system, code: unit === '' ? undefined : unit };
}

/** A jsonpath string literal (JSON's escapes are jsonpath's). */
export function jsonPathString(text: string): string {
  return JSON.stringify(text);
}

/** The prefix condition on one stored element `e` ({v, w}), as a jsonpath predicate. */
export function rangePredicate(e: string, n: NumberSearchValue): string {
  const v = `${e}.v`;
  const w = `${e}.w`;
  const openLow = `!exists(${v})`;
  const openHigh = `!exists(${w})`;
  switch (n.prefix) {
    case 'eq':
      return `(${v} >= ${n.low} && ${w} < ${n.high})`;
    case 'ne':
      return `!(${v} >= ${n.low} && ${w} < ${n.high})`;
    case 'gt':
      return `(${openHigh} || ${w} > ${n.exact})`;
    case 'ge':
      return `(${openHigh} || ${w} >= ${n.exact})`;
    case 'lt':
      return `(${openLow} || ${v} < ${n.exact})`;
    case 'le':
      return `(${openLow} || ${v} <= ${n.exact})`;
    case 'sa':
      return `${v} > ${n.exact}`;
    case 'eb':
      return `${w} < ${n.exact}`;
    case 'ap':
      return `((${openLow} || ${v} <= ${n.approxHigh}) && (${openHigh} || ${w} >= ${n.approxLow}))`;
  }
}

/** Number, system and code of one search value against one stored element `e`. */
export function quantityPredicate(e: string, value: QuantitySearchValue): string {
  const terms = [rangePredicate(e, value.number)];
  if (value.system !== undefined) terms.push(`${e}.s == ${jsonPathString(value.system)}`);
  if (value.code !== undefined) {
    terms.push(
      value.system !== undefined
        ? `${e}.c == ${jsonPathString(value.code)}`
        : `(${e}.c == ${jsonPathString(value.code)} || ${e}.u == ${jsonPathString(value.code)})`
    );
  }
  return terms.join(' && ');
}

/** Ascending by the smallest stored value, descending by the largest. */
export function quantitySortExpression(column: string, descending: boolean): string {
  return descending
    ? `(SELECT max(coalesce((q->>'w')::numeric, (q->>'v')::numeric)) FROM jsonb_array_elements(${column}) q) DESC NULLS LAST`
    : `(SELECT min(coalesce((q->>'v')::numeric, (q->>'w')::numeric)) FROM jsonb_array_elements(${column}) q) ASC NULLS LAST`;
}

export const quantityParameter: ParameterType = {
  columns(param) {
    const name = paramColumn(param.def.code);
    return [{ name, sqlType: 'jsonb', indexMethod: 'gin', indexExpression: `"${name}" jsonb_path_ops` }];
  },

  extract(param, nodes, out) {
    const values = quantityIndexValues(nodes);
    out[paramColumn(param.def.code)] = values ? JSON.stringify(values) : null;
  },

  parse(param, modifier, values): QuantityFilter {
    const code = param.def.code;
    if (modifier !== undefined) throw badRequest(`Modifier :${modifier} is not supported for quantity parameter ${code}`, code);
    return { kind: 'quantity', code, values: values.map((v) => parseQuantitySearchValue(code, v)) };
  },

  // `@\\?` is jsonb's `@?`: knex reads a bare `?` as a binding.
  condition(param, filter, column) {
    if (filter.kind !== 'quantity') throw new Error(`quantity parameter cannot apply a ${filter.kind} filter`);
    const predicates = filter.values.map((v) => `(${quantityPredicate('@', v)})`);
    return { sql: `${column(paramColumn(param.def.code))} @\\? ?::jsonpath`, bindings: [`$[*] ? (${predicates.join(' || ')})`] };
  },

  missing(param, missing, column) {
    return columnMissing(column(paramColumn(param.def.code)), missing);
  },

  sort(param, descending, column) {
    return quantitySortExpression(column(paramColumn(param.def.code)), descending);
  },
};
