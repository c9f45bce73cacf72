import type { Narrative } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import { paramColumn } from './column-names';
import type { ParameterType } from './parameter-type';
import { columnMissing } from './parameter-type';
import { contentSearchEnabled } from './full-text-settings';
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
const TEXT_SEARCH_DOCUMENTATION =
  'Search on the narrative of the resource: words are case- and accent-insensitive and must all occur; ' +
  '`or`, `and`, `not` (or a leading `-`), parentheses, "a phrase" and prefix* combine them, e.g. (bone or liver) and metastases';

/** What the CapabilityStatement says of `_content`. */
const CONTENT_SEARCH_DOCUMENTATION =
  'Search on the entire content of the resource (every text, code and identifier, and the narrative), read as _text is';

/**
 * The full-text parameter a code of an official definition stands for (R4 defines `_text`
 * and `_content` with no expression: there is nothing to evaluate, the handler reads the
 * resource). `_content` only when SEARCH_CONTENT is on.
 */
export function fullTextParameter(code: string): ParameterType | undefined {
  // Official definitions give `_text` to DomainResources only (search-parameter-definitions.ts).
  if (code === '_text') return textSearchParameter;
  if (code === '_content') return contentSearchEnabled() ? contentSearchParameter : undefined;
  return undefined;
}

/**
 * The words of a whole resource for `_content`: every string value (texts, codes,
 * displays, names, identifiers, addresses, those of contained resources) and the
 * narrative's text. Left out: what is not words for a reader — references, URLs and
 * other URIs, ids, base64 data, dates and meta. Values are kept apart by a gap in the
 * positions, so a phrase never runs from one element into the next.
 */
export function contentWords(resource: unknown): string[] {
  const words: string[] = [];
  // A loop, not push(...): a long narrative has more words than a call takes arguments.
  const add = (found: string[]): void => {
    for (const word of found) words.push(word);
    words.push('');
  };
  const visit = (value: unknown, key: string): void => {
    if (typeof value === 'string') {
      if (key === 'div') add(textWords(narrativeText(value)));
      else if (!NOT_WORDS.test(value)) add(textWords(value));
    } else if (Array.isArray(value)) {
      for (const item of value) visit(item, key);
    } else if (value !== null && typeof value === 'object') {
      for (const k in value) {
        if (!SKIPPED_KEYS.has(k)) visit((value as Record<string, unknown>)[k], k);
      }
    }
  };
  visit(resource, '');
  return words;
}

const SKIPPED_KEYS: ReadonlySet<string> = new Set(['resourceType', 'id', 'meta', 'reference', 'url', 'system', 'profile', 'fullUrl', 'data', 'contentType', 'language']);

/** Dates, date-times and instants; http(s) URLs and URNs. */
const NOT_WORDS = /^(\d{4}(-\d{2}(-\d{2}(T[\d:.+-]*Z?)?)?)?|https?:\/\/\S*|urn:\S*)$/i;

/**
 * `_text` and `_content` (R4 search.html#text): full-text search, words folded as string
 * search folds them (case and accents). One `tsvector` column of the words with their
 * positions, GIN-indexed (only rows with words are in the index); the query is a tsquery
 * matched with `@@`. The words are split in JavaScript on both sides
 * (text-search-lexemes.ts), so PostgreSQL's text-search configuration plays no part: no
 * stemming, no stop words, any language's letters.
 */
function fullTextParameterType(words: (resource: Record<string, unknown>) => string[], documentation: string): ParameterType {
  return {
    documentation,

    columns(param) {
      return [{ name: paramColumn(param.def.code), sqlType: 'tsvector', indexMethod: 'gin' }];
    },

    extract(param, _nodes, out, resource) {
      out[paramColumn(param.def.code)] = tsvectorLiteral(words(resource as unknown as Record<string, unknown>));
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
}

/** `_text`: the narrative (`text.div`). */
export const textSearchParameter: ParameterType = fullTextParameterType((resource) => {
  const div = (resource.text as Narrative | undefined)?.div;
  return typeof div === 'string' ? textWords(narrativeText(div)) : [];
}, TEXT_SEARCH_DOCUMENTATION);

/** `_content`: the whole resource (contentWords). */
export const contentSearchParameter: ParameterType = fullTextParameterType(contentWords, CONTENT_SEARCH_DOCUMENTATION);
