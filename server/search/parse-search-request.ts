import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { parseFilterExpression } from './filter-expression';
import { badRequest, issue } from '../core/outcome';
import { isResourceType } from '../validation/structure-definitions';
import { searchSortKeys } from './build-search-sql';
import { FUNCTIONAL_LIST_NAMES, functionalListQuery } from './functional-lists';
import { parseDateSearchValue } from './date-search-value';
import { decodeCursor } from './page-cursor';
import { isIncludeKey, parseIncludeRule } from './parse-include-parameter';
import { isChainKey, isHasKey, parseChain, parseHas } from './parse-chained-parameter';
import { parseSortParameter } from './parse-sort-parameter';
import { searchParamDef } from './search-parameter-definitions';
import type { SearchFilter, SearchRequest } from './search-request';
import { splitUnescaped, unescapeSearchValue } from './search-value-escaping';
import { indexedParam } from './supported-parameters';

export interface SearchOptions {
  /** `Prefer: handling=strict`: unknown parameters are a 400 instead of a warning. */
  strict: boolean;
  defaultCount: number;
  maxCount: number;
}

export type SearchQuery = Record<string, string | string[] | undefined>;

const SUMMARY_VALUES: ReadonlySet<string> = new Set(['true', 'false', 'text', 'data', 'count']);
const TOTAL_VALUES: ReadonlySet<string> = new Set(['none', 'estimate', 'accurate']);

function nonNegativeInteger(name: string, value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw badRequest(`${name} must be a non-negative integer, got '${value}'`, name);
  return Number(value);
}

/** Result parameters are single-valued; when repeated, the last one counts. */
function last(values: string[]): string {
  return values[values.length - 1];
}

/**
 * Parses a type-level search (https://hl7.org/fhir/R4/search.html). Unknown or not
 * (yet) supported parameters are ignored with a warning, or a 400 when strict;
 * malformed values and modifiers are a 400 in both modes, since ignoring them would
 * silently widen the result.
 */
export function parseSearchRequest(resourceType: string, query: SearchQuery, options: SearchOptions): SearchRequest {
  if (!isResourceType(resourceType)) throw badRequest(`Unknown resource type '${resourceType}'`);
  const request: SearchRequest = {
    resourceType,
    filters: [],
    sort: [],
    count: options.defaultCount,
    offset: 0,
    total: 'none',
    warnings: [],
  };
  // The query pair being parsed: an ignored one is left out of the self link (search.html#errors).
  let parsing: [string, string] | undefined;
  const ignore = (name: string, reason: string): void => {
    const text = `${reason}: ${name}`;
    if (options.strict) throw badRequest(text, name);
    request.warnings.push(warning(text, name));
    if (parsing) (request.ignored ??= []).push(parsing);
  };

  let cursor: string | undefined;
  for (const [key, raw] of Object.entries(query)) {
    if (raw === undefined) continue;
    const values = Array.isArray(raw) ? raw : [raw];
    if (values.length === 0) continue;
    parsing = undefined;
    if (isIncludeKey(key)) {
      for (const value of values) {
        parsing = [key, value];
        const rule = parseIncludeRule(resourceType, key, value, ignore);
        if (rule) (key.startsWith('_revinclude') ? (request.revinclude ??= []) : (request.include ??= [])).push(rule);
      }
      continue;
    }
    switch (key) {
      case '_count': {
        const count = nonNegativeInteger(key, last(values));
        if (count > options.maxCount) {
          request.warnings.push(warning(`_count ${count} exceeds the maximum; using ${options.maxCount}`, key));
        }
        request.count = Math.min(count, options.maxCount);
        continue;
      }
      case '_offset':
        request.offset = nonNegativeInteger(key, last(values));
        continue;
      case '_cursor':
        cursor = last(values);
        continue;
      case '_total': {
        const total = last(values);
        if (!TOTAL_VALUES.has(total)) throw badRequest(`_total must be none, estimate or accurate, got '${total}'`, key);
        request.total = total as SearchRequest['total'];
        continue;
      }
      case '_summary': {
        const summary = last(values);
        if (!SUMMARY_VALUES.has(summary)) throw badRequest(`Invalid _summary '${summary}'`, key);
        request.summary = summary;
        continue;
      }
      case '_elements':
        request.elements = values.flatMap((v) => v.split(',')).map((e) => e.trim()).filter((e) => e.length > 0);
        continue;
      case '_format':
        request.format = last(values);
        continue;
      case '_pretty':
        request.pretty = last(values);
        continue;
      case '_sort':
        request.sort = parseSortParameter(resourceType, last(values), ignore);
        continue;
    }
    for (const value of values) {
      parsing = [key, value];
      const filter = parseFilter(resourceType, key, value, ignore);
      if (filter) request.filters.push(filter);
    }
  }
  // After the loop: how many values a cursor holds depends on _sort, wherever it stands.
  if (cursor !== undefined) request.cursor = decodeCursor(cursor, searchSortKeys(request).length);
  return request;
}

function warning(text: string, name: string): OperationOutcomeIssue {
  return issue('warning', 'not-supported', text, name);
}

function parseFilter(
  resourceType: string,
  key: string,
  value: string,
  ignore: (name: string, reason: string) => void
): SearchFilter | undefined {
  if (isHasKey(key) || isChainKey(key)) {
    // Whatever part of the chain is unknown, the warning names the whole parameter.
    const ignoreWhole = (_name: string, reason: string): void => ignore(key, reason);
    const inner = (type: string, rest: string, v: string): SearchFilter | undefined => parseFilter(type, rest, v, ignoreWhole);
    return isHasKey(key) ? parseHas(resourceType, key, value, ignoreWhole, inner) : parseChain(resourceType, key, value, ignoreWhole, inner);
  }
  if (key === '_filter') {
    // Inside an expression nothing is ignored: leaving out a part of it would change its meaning.
    const refuse = (name: string, reason: string): void => {
      throw badRequest(`_filter: ${reason}: ${name}`, '_filter');
    };
    return parseFilterExpression(value, (k, v) => parseFilter(resourceType, k, v, refuse));
  }
  const colon = key.indexOf(':');
  const code = colon < 0 ? key : key.slice(0, colon);
  const modifier = colon < 0 ? undefined : key.slice(colon + 1);
  // An empty value constrains nothing (`?code=`): ignored, as most servers do.
  const parts = splitUnescaped(value, ',').filter((p) => p.length > 0);
  if (parts.length === 0) return undefined;

  if (code === '_id') {
    if (modifier !== undefined && modifier !== 'not') throw badRequest(`Modifier :${modifier} is not supported for _id`, key);
    return { kind: 'id', not: modifier === 'not', ids: parts.map(unescapeSearchValue) };
  }
  if (code === '_list') {
    if (modifier !== undefined) throw badRequest(`Modifier :${modifier} is not supported for _list`, key);
    return listFilter(resourceType, parts.map(unescapeSearchValue), key, ignore);
  }
  if (code === '_lastUpdated') {
    if (modifier !== undefined) throw badRequest(`Modifier :${modifier} is not supported for _lastUpdated`, key);
    return { kind: 'lastUpdated', values: parts.map((p) => parseDateSearchValue(code, p)) };
  }
  const param = indexedParam(resourceType, code);
  if (!param) {
    ignore(key, searchParamDef(resourceType, code) ? 'Search parameter not supported' : 'Unknown search parameter');
    return undefined;
  }
  if (modifier === 'missing') {
    if (value !== 'true' && value !== 'false') throw badRequest(`${key} must be true or false, got '${value}'`, key);
    return { kind: 'missing', code, missing: value === 'true' };
  }
  // Each parameter type rejects the modifiers it does not implement (a 400 in both modes).
  return param.handler.parse(param, modifier, parts);
}

/**
 * `_list=42` (R4 search.html#list): the resources that List/42 references from
 * `List.entry.item`, as `_has:List:item:_id=42`, so that the List is searched as every
 * `_has` source is: live, and only if the principal may search Lists and see that one.
 * `_list=$current-allergies`: a functional list, the search that defines it for this
 * type (search/functional-lists.ts); a type the list holds none of matches nothing.
 * Several values are ORed; a functional list this server does not define is a 400.
 */
function listFilter(resourceType: string, values: string[], key: string, ignore: (name: string, reason: string) => void): SearchFilter {
  const ids = values.filter((v) => !v.startsWith('$'));
  const alternatives: SearchFilter[] = [];
  if (ids.length > 0) alternatives.push({ kind: 'has', sourceType: 'List', code: 'item', filter: { kind: 'id', not: false, ids } });
  for (const name of values.filter((v) => v.startsWith('$'))) {
    const query = functionalListQuery(name, resourceType);
    if (query === undefined) {
      throw badRequest(`Unknown functional list '${name}' for _list; this server defines ${FUNCTIONAL_LIST_NAMES.join(', ')}`, key);
    }
    if (query === null) continue;
    const filters = query.map(([code, value]) => parseFilter(resourceType, code, value, ignore));
    // The definitions name official parameters of their own types only.
    if (filters.some((f) => f === undefined)) throw new Error(`functional list ${name} names a parameter ${resourceType} lacks`);
    alternatives.push({ kind: 'all', filters: filters as SearchFilter[] });
  }
  return alternatives.length === 1 ? alternatives[0] : { kind: 'any', filters: alternatives };
}

/** For conditional create / update / delete: `If-None-Exist: identifier=http://x|123` is a query string without `?`. */
export function parseSearchQueryString(resourceType: string, queryString: string, options: SearchOptions): SearchRequest {
  const query: Record<string, string[]> = {};
  for (const [key, value] of new URLSearchParams(queryString.replace(/^\?/, ''))) {
    (query[key] ??= []).push(value);
  }
  return parseSearchRequest(resourceType, query, options);
}
