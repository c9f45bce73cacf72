import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { issue, outcome } from '../core/outcome';
import { encodeCursor, type PageCursor } from '../search/page-cursor';
import { parseSearchRequest } from '../search/parse-search-request';
import type { FhirHandler } from './fhir-request';
import { applySummary, parseElements, parseSummary } from './summary';

/** https://hl7.org/fhir/R4/http.html#search — GET [type]?… and POST [type]/_search. */
export const search: FhirHandler = async (req, ctx) => {
  const resourceType = req.resourceType as string;
  const query = { ...req.query, ...formParams(req.body) };
  const request = parseSearchRequest(resourceType, query, {
    strict: req.preferHandling === 'strict',
    defaultCount: ctx.config.searchDefaultCount,
    maxCount: ctx.config.searchMaxCount,
  });
  const summary = parseSummary(query._summary);
  const elements = parseElements(query._elements);
  const path = `${ctx.baseUrl}/${resourceType}`;

  if (summary === 'count') {
    const total = await ctx.repo.count(request);
    return { status: 200, resource: bundle(path, queryOf(query), [], total, request.warnings) };
  }

  const result = await ctx.repo.search(request);
  const entries: BundleEntry[] = result.resources.map((r) => ({
    fullUrl: `${ctx.baseUrl}/${r.resourceType}/${r.id}`,
    resource: applySummary(r, summary, elements),
    search: { mode: 'match' },
  }));
  if (request.include?.length || request.revinclude?.length) {
    // Only for this page's matches: includes never change total or paging.
    const included = await ctx.repo.include(request, result.resources);
    for (const r of included.resources) {
      // _elements names elements of the matched type; _summary applies to every entry.
      entries.push({ fullUrl: `${ctx.baseUrl}/${r.resourceType}/${r.id}`, resource: applySummary(r, summary), search: { mode: 'include' } });
    }
    if (included.truncated) {
      request.warnings.push(
        issue('warning', 'too-costly', `Included resources were limited to ${ctx.config.searchMaxCount} per page; request a smaller _count to get all of them`, '_include')
      );
    }
  }
  const params = queryOf(query);
  const searchset = bundle(path, params, entries, result.total, request.warnings);
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
};

/** POST [type]/_search carries its parameters as an x-www-form-urlencoded body. */
function formParams(body: unknown): Record<string, string | string[]> {
  if (!(body instanceof URLSearchParams)) {
    return {};
  }
  const result: Record<string, string | string[]> = {};
  for (const key of new Set(body.keys())) {
    const values = body.getAll(key);
    result[key] = values.length === 1 ? values[0] : values;
  }
  return result;
}

function queryOf(query: Record<string, string | string[] | undefined>): URLSearchParams {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
      params.append(key, v);
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
  warnings: ReturnType<typeof parseSearchRequest>['warnings']
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
    entry,
  };
}
