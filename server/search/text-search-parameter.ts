import type { Narrative } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import { paramColumn } from './column-names';
import type { ParameterType } from './parameter-type';
import { columnMissing } from './parameter-type';
import { unescapeSearchValue } from './search-value-escaping';
import { narrativeText, textWords, tsvectorLiteral } from './text-search-lexemes';
import { textQuery } from './text-search-query';

/** `_text=(bone or liver) and metastases`: each value a tsquery (text-search-query.ts); values ORed. */
export interface TextSearchFilter {
  kind: 'text-search';
  code: string;
  queries: string[];
}

/** What the CapabilityStatement says of `_text`: how a value is read. */
export const TEXT_SEARCH_DOCUMENTATION =
  'Search on the narrative of the resource: words are case- and accent-insensitive and must all occur; ' +
  '`or`, `and`, `not` (or a leading `-`), parentheses, "a phrase" and prefix* combine them, e.g. (bone or liver) and metastases';

/** The types with no narrative (R4: the resources that are not DomainResources). */
const WITHOUT_NARRATIVE: ReadonlySet<string> = new Set(['Bundle', 'Binary', 'Parameters']);

/** The full-text parameter a definition stands for on a type (R4 defines `_text` with no expression), if any. */
export function isTextSearch(resourceType: string, code: string): boolean {
  return code === '_text' && !WITHOUT_NARRATIVE.has(resourceType);
}

/**
 * `_text` (R4 search.html#text): full-text search over the narrative (`text.div`),
 * words folded as string search folds them (case and accents). One `tsvector` column of
 * the narrative's words with their positions, GIN-indexed (only rows with a narrative are
 * in the index); the query is a tsquery matched with `@@`. The words are split in
 * JavaScript on both sides (text-search-lexemes.ts), so PostgreSQL's text-search
 * configuration plays no part: no stemming, no stop words, any language's letters.
 */
export const textSearchParameter: ParameterType = {
  columns(param) {
    return [{ name: paramColumn(param.def.code), sqlType: 'tsvector', indexMethod: 'gin' }];
  },

  extract(param, _nodes, out, resource) {
    const div = (resource as { text?: Narrative }).text?.div;
    out[paramColumn(param.def.code)] = typeof div === 'string' ? tsvectorLiteral(textWords(narrativeText(div))) : null;
  },

  parse(param, modifier, values): TextSearchFilter {
    const code = param.def.code;
    if (modifier !== undefined) throw badRequest(`Modifier :${modifier} is not supported for ${code}`, code);
    return { kind: 'text-search', code, queries: values.map((v) => textQuery(unescapeSearchValue(v), code)) };
  },

  condition(param, filter, column) {
    if (filter.kind !== 'text-search') throw new Error(`${param.def.code} cannot apply a ${filter.kind} filter`);
    const query = filter.queries.length === 1 ? filter.queries[0] : filter.queries.map((q) => `( ${q} )`).join(' | ');
    return { sql: `${column(paramColumn(param.def.code))} @@ ?::tsquery`, bindings: [query] };
  },

  missing(param, missing, column) {
    return columnMissing(column(paramColumn(param.def.code)), missing);
  },
};
