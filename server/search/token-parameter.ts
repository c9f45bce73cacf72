import { badRequest } from '../core/outcome';
import { paramColumn } from './column-names';
import type { IndexColumn } from './index-columns';
import type { ParamContext, ParameterType, SqlCondition } from './parameter-type';
import { arrayEntrySort, placeholders } from './parameter-type';
import type { OfTypeFilter, SearchFilter, TokenSearchValue, TokenSet } from './search-request';
import { splitUnescaped, unescapeSearchValue } from './search-value-escaping';
import { escapeLike, normalizeText, TEXT_SEPARATOR } from './folded-text';
import { anySystemEntry, ofTypeEntry, systemCodeEntry, systemOnlyEntry } from './token-encoding';
import { tokenIndexValues } from './token-index-values';

/**
 * Token parameters: one `text[]` column of encoded entries per parameter (GIN, so every
 * form is an indexed `&&`), plus, where values carry display text, one text column for
 * `:text` (trigram GIN, so starts-with over several displays is an indexed LIKE).
 * See token-encoding.ts.
 */
const TEXT_SUFFIX = 'text';

/** Types with display text; parameters over codes, booleans or ContactPoints get no `:text` column. */
const TEXT_TYPES: ReadonlySet<string> = new Set(['Coding', 'CodeableConcept', 'Identifier']);

const textColumn = new WeakMap<ParamContext['expression'], boolean>();

function hasTextColumn(param: ParamContext): boolean {
  let has = textColumn.get(param.expression);
  if (has === undefined) {
    const types = param.expression.resultTypes;
    has = types === undefined || [...types].some((t) => TEXT_TYPES.has(t));
    textColumn.set(param.expression, has);
  }
  return has;
}

export function parseTokenValue(code: string, raw: string): TokenSearchValue {
  const parts = splitUnescaped(raw, '|', 2);
  if (parts.length === 1) return { code: unescapeSearchValue(parts[0]) };
  const system = unescapeSearchValue(parts[0]);
  const value = unescapeSearchValue(parts[1]);
  if (system === '' && value === '') throw badRequest(`Empty token value '|' for parameter ${code}`, code);
  return value === '' ? { system } : { system, code: value };
}

function parseOfType(code: string, raw: string): OfTypeFilter['values'][number] {
  const parts = splitUnescaped(raw, '|');
  if (parts.length !== 3 || parts[1] === '' || parts[2] === '') {
    throw badRequest(`${code}:of-type needs system|code|value, got '${raw}'`, code);
  }
  const [typeSystem, typeCode, value] = parts.map(unescapeSearchValue);
  return { typeSystem, typeCode, value };
}

function subsumptionSet(code: string, relation: 'below' | 'above', raw: string): TokenSet {
  const value = parseTokenValue(code, raw);
  if (!value.system || value.code === undefined) {
    throw badRequest(`${code}:${relation} needs system|code (the code system decides what a code subsumes), got '${raw}'`, code);
  }
  return { system: value.system, code: value.code, relation };
}

export function tokenEntry(value: TokenSearchValue): string {
  if (value.system === undefined) return anySystemEntry(value.code ?? '');
  if (value.code === undefined) return systemOnlyEntry(value.system);
  return systemCodeEntry(value.system, value.code);
}

export function overlap(column: string, entries: string[]): SqlCondition {
  return { sql: `${column} && ARRAY[${placeholders(entries.length)}]::text[]`, bindings: entries };
}

export const tokenParameter: ParameterType = {
  columns(param) {
    const tokens = paramColumn(param.def.code);
    const columns: IndexColumn[] = [{ name: tokens, sqlType: 'text[]', indexMethod: 'gin' }];
    if (hasTextColumn(param)) {
      const text = paramColumn(param.def.code, TEXT_SUFFIX);
      // :text is rare next to plain token search; a trigram index here cost ~20% of write throughput.
      columns.push({ name: text, sqlType: 'text', indexMethod: 'none' });
    }
    return columns;
  },

  extract(param, nodes, out) {
    const { tokens, text } = tokenIndexValues(nodes);
    out[paramColumn(param.def.code)] = tokens;
    if (hasTextColumn(param)) out[paramColumn(param.def.code, TEXT_SUFFIX)] = text;
  },

  parse(param, modifier, values): SearchFilter {
    const code = param.def.code;
    switch (modifier) {
      case undefined:
      case 'not':
        return { kind: 'token', code, not: modifier === 'not', values: values.map((v) => parseTokenValue(code, v)) };
      case 'text':
        return { kind: 'token-text', code, texts: values.map(unescapeSearchValue) };
      case 'of-type':
        return { kind: 'of-type', code, values: values.map((v) => parseOfType(code, v)) };
      case 'in':
      case 'not-in':
        return { kind: 'token-set', code, not: modifier === 'not-in', sets: values.map((v) => ({ valueSet: unescapeSearchValue(v) })) };
      case 'below':
      case 'above':
        return { kind: 'token-set', code, not: false, sets: values.map((v) => subsumptionSet(code, modifier, v)) };
      default:
        throw badRequest(`Modifier :${modifier} is not supported for token parameter ${code}`, code);
    }
  },

  condition(param, filter, column) {
    const tokens = column(paramColumn(param.def.code));
    switch (filter.kind) {
      case 'token': {
        const match = overlap(tokens, filter.values.map(tokenEntry));
        // :not also matches resources without any value (R4 search.html#modifiers).
        return filter.not ? { sql: `(${tokens} IS NULL OR NOT (${match.sql}))`, bindings: match.bindings } : match;
      }
      case 'of-type':
        return overlap(tokens, filter.values.map((v) => ofTypeEntry(v.typeSystem, v.typeCode, v.value)));
      case 'token-text': {
        // Values without display text (codes, booleans) can never match :text.
        if (!hasTextColumn(param)) return { sql: 'false', bindings: [] };
        const text = column(paramColumn(param.def.code, TEXT_SUFFIX));
        const patterns = filter.texts.map((t) => `%${TEXT_SEPARATOR}${escapeLike(normalizeText(t))}%`);
        return { sql: `(${patterns.map(() => `${text} LIKE ?`).join(' OR ')})`, bindings: patterns };
      }
      default:
        throw new Error(`token parameter cannot apply a ${filter.kind} filter`);
    }
  },

  missing(param, missing, column) {
    const columns = [column(paramColumn(param.def.code))];
    if (hasTextColumn(param)) columns.push(column(paramColumn(param.def.code, TEXT_SUFFIX)));
    return missing
      ? { sql: `(${columns.map((c) => `${c} IS NULL`).join(' AND ')})`, bindings: [] }
      : { sql: `(${columns.map((c) => `${c} IS NOT NULL`).join(' OR ')})`, bindings: [] };
  },

  // R4 leaves the token order to the server: by code (the `code` entries, which have no
  // unescaped `|`), whatever the system.
  sort(param, descending, column) {
    return arrayEntrySort(column(paramColumn(param.def.code)), descending, `strpos(e, '|') = 0`);
  },
};
