import type { Resource } from '@medplum/fhirtypes';
import { issue, OperationOutcomeError, outcome } from '../core/outcome';
import { parseSearchRequest, type SearchQuery } from '../search/parse-search-request';
import type { SearchRequest } from '../search/search-request';
import type { ResourceStore } from './resource-store';

/** Rows per round trip: large enough that a hospital of a few thousand beds takes a handful of pages. */
const PAGE_SIZE = 1000;
/** Values per reference list in one query: keeps each `&&` array (and its SQL) small. */
const REFERENCES_PER_QUERY = 200;
/**
 * What one operation call may hold in memory: far above any hospital group's Locations,
 * low enough that a runaway (or a hostile data set) is refused instead of exhausting the process.
 */
export const MAX_MATCHES = 100_000;

/**
 * Every match of a search, read with the keyset cursor (search/page-cursor.ts) page after
 * page: unlike offsets, no match is skipped or repeated while others write. The query is
 * parsed strictly, so that a misspelt parameter fails here instead of matching everything.
 */
export async function searchEveryPage<T extends Resource>(
  store: ResourceStore,
  resourceType: T['resourceType'],
  query: SearchQuery,
  limit = MAX_MATCHES
): Promise<(T & { id: string })[]> {
  return searchEveryMatch<T>(store, parseSearchRequest(resourceType, query, { strict: true, defaultCount: PAGE_SIZE, maxCount: PAGE_SIZE }), limit);
}

/** `searchEveryPage` for filters built in code (a compartment's, say) rather than a query. */
export async function searchEveryMatch<T extends Resource>(store: ResourceStore, first: SearchRequest, limit = MAX_MATCHES): Promise<(T & { id: string })[]> {
  let request = first;
  const found: (T & { id: string })[] = [];
  for (;;) {
    const page = await store.search(request);
    found.push(...(page.resources as (T & { id: string })[]));
    if (found.length > limit) throw tooManyMatches(request.resourceType, limit);
    if (!page.hasMore || !page.next) return found;
    request = { ...request, cursor: page.next };
  }
}

/**
 * `searchEveryPage` for a reference (or `_id`) parameter with any number of values: the
 * values in slices of REFERENCES_PER_QUERY, the matches of all slices (each at most once).
 */
export async function searchByValues<T extends Resource>(
  store: ResourceStore,
  resourceType: T['resourceType'],
  code: string,
  values: Iterable<string>,
  limit = MAX_MATCHES
): Promise<(T & { id: string })[]> {
  const all = [...new Set(values)];
  const found = new Map<string, T & { id: string }>();
  for (let start = 0; start < all.length; start += REFERENCES_PER_QUERY) {
    const slice = all.slice(start, start + REFERENCES_PER_QUERY);
    for (const resource of await searchEveryPage<T>(store, resourceType, { [code]: slice.join(',') }, limit)) {
      found.set(resource.id, resource);
    }
    if (found.size > limit) throw tooManyMatches(resourceType, limit);
  }
  return [...found.values()];
}

function tooManyMatches(resourceType: string, limit: number): OperationOutcomeError {
  return new OperationOutcomeError(
    422,
    outcome([issue('error', 'too-costly', `More than ${limit} ${resourceType} resources would have to be read to answer this; the server refuses`)])
  );
}
