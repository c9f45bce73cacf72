import { badRequest, issue, notFound } from '../core/outcome';
import { compartmentFilter, isCompartmentType } from '../search/compartment-definitions';
import { searchSortKeys } from '../search/build-search-sql';
import { isHasKey } from '../search/parse-chained-parameter';
import { isIncludeKey } from '../search/parse-include-parameter';
import { decodeCursor } from '../search/page-cursor';
import { parseSearchRequest, type SearchQuery } from '../search/parse-search-request';
import { searchParamDef } from '../search/search-parameter-definitions';
import type { SearchFilter, SearchRequest } from '../search/search-request';
import { isResourceType, resourceTypes } from '../validation/structure-definitions';
import type { FhirContext, FhirHandler, FhirRequest, FhirResponse } from './fhir-request';
import { searchOptions, searchQuery, searchsetResponse } from './search';

/** Result parameters: they apply to the whole search, not to one type's rows. */
const RESULT_PARAMETERS: ReadonlySet<string> = new Set([
  '_count', '_offset', '_total', '_summary', '_elements', '_format', '_pretty', '_sort',
]);

/**
 * System-level search, GET [base]?_type=A,B&… and POST [base]/_search
 * (https://hl7.org/fhir/R4/http.html#search): one search per type with the same
 * criteria, paged together. A criterion must be defined on every searched type
 * (https://hl7.org/fhir/R4/search.html#_type); otherwise it would filter some types and
 * silently not others, so it is ignored with a warning (400 with handling=strict).
 * Without `_type`, every type is searched.
 */
export const systemSearch: FhirHandler = async (req, ctx) => {
  return searchTypes(req, ctx, requestedTypes(searchQuery(req)._type), ctx.baseUrl);
};

/**
 * GET Patient/[id]/* (https://hl7.org/fhir/R4/http.html#search), and the same for the
 * Encounter, RelatedPerson, Practitioner and Device compartments: every type of the
 * compartment (or those of `_type`), each confined to it by the official
 * CompartmentDefinition, paged together as a system search is.
 */
export const compartmentSearchAll: FhirHandler = async (req, ctx) => {
  const { type, id } = req.compartment as { type: string; id: string };
  if (!isCompartmentType(type)) throw notFound(`No compartment search for ${type}: it has no CompartmentDefinition`);
  const raw = searchQuery(req)._type;
  const filters = new Map<string, SearchFilter>();
  const outside: string[] = [];
  for (const t of raw === undefined ? resourceTypes : requestedTypes(raw)) {
    const filter = compartmentFilter(type, t, id);
    if (filter) filters.set(t, filter);
    else if (raw !== undefined) outside.push(t);
  }
  if (outside.length > 0) throw badRequest(`_type: not in the ${type} compartment: ${outside.join(', ')}`, '_type');
  const path = `${ctx.baseUrl}/${type}/${encodeURIComponent(id)}/*`;
  return searchTypes(req, ctx, [...filters.keys()], path, (t) => filters.get(t) as SearchFilter);
};

async function searchTypes(
  req: FhirRequest,
  ctx: FhirContext,
  types: string[],
  path: string,
  confine?: (type: string) => SearchFilter
): Promise<FhirResponse> {
  const query = searchQuery(req);
  const options = searchOptions(req, ctx);
  const ignored: ReturnType<typeof issue>[] = [];
  const ignoredPairs: [string, string][] = [];
  const shared: SearchQuery = {};
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || key === '_cursor' || key === '_type') continue;
    if (isIncludeKey(key)) continue;
    const code = key.split(/[:.]/)[0];
    // `_list` applies to every type, with no SearchParameter of its own (search/parse-search-request.ts).
    if (!RESULT_PARAMETERS.has(key) && !isHasKey(key) && code !== '_list' && !types.every((type) => searchParamDef(type, code))) {
      const text = `Search parameter not defined on every type searched (${types.length > 5 ? `${types.length} types` : types.join(', ')}): ${key}`;
      if (options.strict) throw badRequest(text, key);
      ignored.push(issue('warning', 'not-supported', text, key));
      for (const v of Array.isArray(value) ? value : [value]) ignoredPairs.push([key, v]);
      continue;
    }
    shared[key] = value;
  }
  const requests = types.map((type) => parseSearchRequest(type, { ...shared, ...includesFor(type, query) }, options));
  for (const request of requests) {
    if (confine) request.filters.push(confine(request.resourceType));
    if (ignoredPairs.length > 0) request.ignored = [...(request.ignored ?? []), ...ignoredPairs];
  }
  const [first] = requests;
  const cursor = lastValue(query._cursor);
  if (cursor !== undefined) {
    // The position across types ends in the resource type (see Repository.searchAcross).
    const decoded = decodeCursor(cursor, searchSortKeys(first).length + 1);
    for (const request of requests) request.cursor = decoded;
  }
  first.warnings = dedupe([...ignored, ...requests.flatMap((r) => r.warnings)]);
  return searchsetResponse(ctx, path, query, requests);
}

function requestedTypes(raw: string | string[] | undefined): string[] {
  if (raw === undefined) return [...resourceTypes];
  const types = [...new Set((Array.isArray(raw) ? raw : [raw]).flatMap((v) => v.split(',')).map((t) => t.trim()))];
  for (const type of types) {
    if (!isResourceType(type)) throw badRequest(`_type: unknown resource type '${type}'`, '_type');
  }
  return types;
}

/** `_include=Patient:organization` belongs to the Patient search; `*` rules to every type. */
function includesFor(type: string, query: SearchQuery): SearchQuery {
  const result: SearchQuery = {};
  for (const [key, raw] of Object.entries(query)) {
    if (raw === undefined || !isIncludeKey(key)) continue;
    const values = (Array.isArray(raw) ? raw : [raw]).filter((v) => {
      const source = v.split(':')[0];
      return key.startsWith('_revinclude') || source === '*' || source === type;
    });
    if (values.length > 0) result[key] = values;
  }
  return result;
}

function lastValue(raw: string | string[] | undefined): string | undefined {
  return Array.isArray(raw) ? raw[raw.length - 1] : raw;
}

function dedupe(issues: SearchRequest['warnings']): SearchRequest['warnings'] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.code}|${i.diagnostics}|${i.expression?.join()}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
