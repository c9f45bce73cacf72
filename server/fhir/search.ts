import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { badRequest, issue, notFound, outcome } from '../core/outcome';
import { compartmentFilter, isCompartmentType } from '../search/compartment-definitions';
import { encodeCursor, type PageCursor } from '../search/page-cursor';
import { parseSearchRequest, type SearchOptions, type SearchQuery } from '../search/parse-search-request';
import { reindexWarnings } from '../search/reindex-warnings';
import type { SearchRequest } from '../search/search-request';
import type { FhirContext, FhirHandler, FhirRequest, FhirResponse } from './fhir-request';
import { paramsRecord } from '../core/params-record';
import { applySummary, parseElements, parseSummary } from './summary';
import { nonEmpty } from '../core/non-empty';

/**
 * https://hl7.org/fhir/R4/http.html#search — GET [type]?… and POST [type]/_search, and
 * compartment search GET Patient/[id]/[type]?… (the same search, confined to the
 * compartment by the official CompartmentDefinition).
 */
export const search: FhirHandler = async (req, ctx) => {
  const resourceType = req.resourceType as string;
  const query = searchQuery(req);
  const request = parseSearchRequest(resourceType, query, searchOptions(req, ctx));
  let path = `${ctx.baseUrl}/${resourceType}`;
  if (req.compartment) {
    const { type, id } = req.compartment;
    if (!isCompartmentType(type)) throw notFound(`No compartment search for ${type}: it has no CompartmentDefinition`);
    const filter = compartmentFilter(type, resourceType, id);
    if (!filter) throw badRequest(`${resourceType} is not in the ${type} compartment`);
    request.filters.push(filter);
    path = `${ctx.baseUrl}/${type}/${encodeURIComponent(id)}/${resourceType}`;
  }
  return searchsetResponse(ctx, path, query, [request]);
};

export function searchQuery(req: FhirRequest): SearchQuery {
  return { ...req.query, ...formParams(req.body) };
}

export function searchOptions(req: FhirRequest, ctx: FhirContext): SearchOptions {
  return { strict: req.preferHandling === 'strict', defaultCount: ctx.config.searchDefaultCount, maxCount: ctx.config.searchMaxCount };
}

/**
 * The searchset Bundle for one or (system search) several per-type requests sharing
 * paging and result parameters: matches, then `_include`/`_revinclude`d resources for
 * this page only (so they never change total or paging), then any warnings.
 */
export async function searchsetResponse(ctx: FhirContext, path: string, query: SearchQuery, requests: SearchRequest[]): Promise<FhirResponse> {
  const [request] = requests;
  const summary = parseSummary(query._summary);
  const elements = parseElements(query._elements);
  const warnings = request.warnings;
  for (const typeRequest of requests) warnings.push(...reindexWarnings(typeRequest));
  // _count=0 asks for no entries: what it is for is the total (as _summary=count), unless _total=none.
  if (summary === 'count' || (request.count === 0 && query._total === undefined)) {
    const total = await ctx.repo.countAcrossTypes(requests);
    return { status: 200, resource: bundle(path, queryOf(query, requests), [], total, warnings) };
  }

  const result = await ctx.repo.searchAcross(requests);
  const entries: BundleEntry[] = result.resources.map((r) => ({
    fullUrl: `${ctx.baseUrl}/${r.resourceType}/${r.id}`,
    resource: applySummary(r, summary, elements),
    search: { mode: 'match' },
  }));
  for (const typeRequest of requests) {
    if (!typeRequest.include?.length && !typeRequest.revinclude?.length) continue;
    const matches = requests.length === 1 ? result.resources : result.resources.filter((r) => r.resourceType === typeRequest.resourceType);
    const included = await ctx.repo.include(typeRequest, matches);
    for (const r of included.resources) {
      // _elements names elements of the matched type; _summary applies to every entry.
      entries.push({ fullUrl: `${ctx.baseUrl}/${r.resourceType}/${r.id}`, resource: applySummary(r, summary), search: { mode: 'include' } });
    }
    if (included.truncated) {
      warnings.push(
        issue('warning', 'too-costly', `Included resources were limited to ${ctx.config.searchMaxCount} per page; request a smaller _count to get all of them`, '_include')
      );
    }
  }
  const params = queryOf(query, requests);
  // Without _total, the total is given when it costs nothing: every match is on this first page.
  const whole = query._total === undefined && !request.cursor && request.offset === 0 && !result.next;
  const searchset = bundle(path, params, entries, result.total ?? (whole ? result.resources.length : undefined), warnings);
  const links = searchset.link ?? [];
  if (result.next) {
    links.push({ relation: 'next', url: pageUrl(path, params, request.count, result.next) });
  }
  if (result.previous) {
    links.push({ relation: 'previous', url: pageUrl(path, params, request.count, result.previous) });
  }
  if (request.cursor || request.offset > 0) {
    links.push({ relation: 'first', url: pageUrl(path, params, request.count) });
  }
  return { status: 200, resource: searchset };
}

/** POST [type]/_search carries its parameters as an x-www-form-urlencoded body. */
function formParams(body: unknown): Record<string, string | string[]> {
  return body instanceof URLSearchParams ? paramsRecord(body) : {};
}

/**
 * The query as the links give it: without the pairs every request ignored, so that the
 * self link says which parameters the search used (search.html#errors).
 */
function queryOf(query: SearchQuery, requests: readonly SearchRequest[]): URLSearchParams {
  const ignoredBy = (request: SearchRequest): Set<string> => new Set((request.ignored ?? []).map(([k, v]) => `${k}=${v}`));
  const [first, ...others] = requests.map(ignoredBy);
  const ignored = new Set([...first].filter((pair) => others.every((set) => set.has(pair))));
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
      if (!ignored.has(`${key}=${v}`)) params.append(key, v);
    }
  }
  return params;
}

/** A page link: the same search from `cursor` (the first page without one). */
function pageUrl(path: string, params: URLSearchParams, count: number, cursor?: PageCursor): string {
  const page = new URLSearchParams(params);
  page.delete('_offset');
  page.delete('_cursor');
  page.set('_count', String(count));
  if (cursor) page.set('_cursor', encodeCursor(cursor));
  return `${path}?${page}`;
}

function bundle(
  path: string,
  params: URLSearchParams,
  entries: BundleEntry[],
  total: number | undefined,
  warnings: SearchRequest['warnings']
): Bundle {
  const entry = [...entries];
  if (warnings.length > 0) {
    entry.push({ resource: outcome(warnings) as Resource, search: { mode: 'outcome' } });
  }
  const text = params.toString();
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    ...(total !== undefined ? { total } : {}),
    link: [{ relation: 'self', url: text ? `${path}?${text}` : path }],
    ...nonEmpty('entry', entry),
  };
}
