import type { Address, HumanName } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import { paramColumn } from './column-names';
import type { TypedNode } from './compile-path-expression';
import type { ParameterType } from './parameter-type';
import { columnMissing, placeholders } from './parameter-type';
import type { StringFilter } from './search-request';
import { unescapeSearchValue } from './search-value-escaping';
import { escapeLike, joinTextValues, normalizeText, TEXT_SEPARATOR } from './folded-text';

/**
 * String parameters (R4 search.html#string): every string part of the values — each
 * given name, family, prefix, suffix and text of a HumanName; each line, city, district,
 * state, postal code, country and text of an Address — is a value of its own.
 * Two columns: the parts case- and accent-folded and joined by a separator (trigram GIN:
 * starts-with is `LIKE '%<sep>abc%'`, `:contains` is `LIKE '%abc%'`), and the parts as
 * written (`text[]`, GIN) for `:exact`.
 */
const EXACT_SUFFIX = 'exact';

function stringParts(nodes: readonly TypedNode[]): string[] {
  const parts: string[] = [];
  const add = (v: unknown): void => {
    if (typeof v === 'string' && v.trim().length > 0) parts.push(v);
    else if (Array.isArray(v)) v.forEach(add);
  };
  for (const { type, value } of nodes) {
    if (type === 'HumanName') {
      const n = value as HumanName;
      [n.family, n.given, n.prefix, n.suffix, n.text].forEach(add);
    } else if (type === 'Address') {
      const a = value as Address;
      [a.line, a.city, a.district, a.state, a.postalCode, a.country, a.text].forEach(add);
    } else {
      add(value);
    }
  }
  return [...new Set(parts)];
}

export const stringParameter: ParameterType = {
  columns(param) {
    const folded = paramColumn(param.def.code);
    return [
      { name: folded, sqlType: 'text', indexMethod: 'gin', indexExpression: `"${folded}" gin_trgm_ops` },
      // :exact is served by the trigram index on the folded column, then checked here.
      { name: paramColumn(param.def.code, EXACT_SUFFIX), sqlType: 'text[]', indexMethod: 'none' },
    ];
  },

  extract(param, nodes, out) {
    const parts = stringParts(nodes);
    out[paramColumn(param.def.code)] = joinTextValues(parts);
    out[paramColumn(param.def.code, EXACT_SUFFIX)] = parts.length > 0 ? parts : null;
  },

  parse(param, modifier, values): StringFilter {
    const code = param.def.code;
    if (modifier !== undefined && modifier !== 'exact' && modifier !== 'contains') {
      throw badRequest(`Modifier :${modifier} is not supported for string parameter ${code}`, code);
    }
    return { kind: 'string', code, match: modifier ?? 'starts-with', values: values.map(unescapeSearchValue) };
  },

  condition(param, filter, column) {
    if (filter.kind !== 'string') throw new Error(`string parameter cannot apply a ${filter.kind} filter`);
    const folded = column(paramColumn(param.def.code));
    if (filter.match === 'exact') {
      // The folded starts-with condition lets the trigram index find candidates;
      // the unindexed exact column then decides.
      const prefixes = filter.values.map((v) => `%${TEXT_SEPARATOR}${escapeLike(normalizeText(v))}%`);
      return {
        sql:
          `(${prefixes.map(() => `${folded} LIKE ?`).join(' OR ')}) AND ` +
          `${column(paramColumn(param.def.code, EXACT_SUFFIX))} && ARRAY[${placeholders(filter.values.length)}]::text[]`,
        bindings: [...prefixes, ...filter.values],
      };
    }
    if (filter.match === 'equals' || filter.match === 'ends-with') {
      // A part ends at the next separator or at the end of the column.
      const lead = filter.match === 'equals' ? `%${TEXT_SEPARATOR}` : '%';
      const patterns = filter.values.flatMap((v) => {
        const part = `${lead}${escapeLike(normalizeText(v))}`;
        return [`${part}${TEXT_SEPARATOR}%`, part];
      });
      return { sql: `(${patterns.map(() => `${folded} LIKE ?`).join(' OR ')})`, bindings: patterns };
    }
    const lead = filter.match === 'contains' ? '%' : `%${TEXT_SEPARATOR}`;
    const patterns = filter.values.map((v) => `${lead}${escapeLike(normalizeText(v))}%`);
    return { sql: `(${patterns.map(() => `${folded} LIKE ?`).join(' OR ')})`, bindings: patterns };
  },

  missing(param, missing, column) {
    return columnMissing(column(paramColumn(param.def.code)), missing);
  },

  // Ascending by the smallest folded part, descending by the largest, as numbers, dates
  // and quantities sort (R4 leaves repeats open). Ordering by the joined column instead
  // sorted by whichever part came first (a prefix, a second given name).
  sort(param, descending, column) {
    const parts = `unnest(string_to_array(${column(paramColumn(param.def.code))}, chr(${TEXT_SEPARATOR.charCodeAt(0)})))`;
    return descending
      ? `(SELECT max(p) FROM ${parts} p WHERE p <> '') DESC NULLS LAST`
      : `(SELECT min(p) FROM ${parts} p WHERE p <> '') ASC NULLS LAST`;
  },
};
