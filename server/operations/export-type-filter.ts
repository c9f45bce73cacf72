import type { Resource } from '@medplum/fhirtypes';
import { badRequest, isOperationOutcomeError } from '../core/outcome';
import { parseSearchQueryString, parseSearchRequest } from '../search/parse-search-request';
import type { SearchFilter } from '../search/search-request';
import type { ResourceStore } from '../storage/resource-store';
import { isResourceType } from '../validation/structure-definitions';

/** How one `_typeFilter` query is read: strictly, criteria only. */
const STRICT = { strict: true, defaultCount: 1, maxCount: 1 };

/**
 * Bulk Data `_typeFilter` (https://hl7.org/fhir/uv/bulkdata/export.html#_typefilter):
 * each value is `Type?query`, the parameter repeated or its values joined by commas. Per
 * type the queries are ORed; a type without one is exported whole. A type `_type`
 * leaves out is not exported at all, so its filters are dropped. A query this server
 * cannot run exactly (unknown parameter, a malformed value, result parameters such as
 * `_sort`) is a 400 naming `_typeFilter`, or with `lenient` (`Prefer: handling=lenient`)
 * left out, as the specification allows for what a server does not support.
 */
export function parseTypeFilters(
  values: readonly string[],
  types: readonly string[] | undefined,
  lenient = false,
  ignored: (reason: string) => void = () => undefined
): Record<string, string[]> | undefined {
  const filters: Record<string, string[]> = {};
  for (const entry of values.flatMap((v) => v.split(/,(?=[A-Z][A-Za-z]*\?)/))) {
    const query = lenient ? lenientQuery(entry, ignored) : checkedQuery(entry);
    if (query === undefined || (types && !types.includes(query.type))) continue;
    (filters[query.type] ??= []).push(query.query);
  }
  return Object.keys(filters).length > 0 ? filters : undefined;
}

function lenientQuery(entry: string, ignored: (reason: string) => void): { type: string; query: string } | undefined {
  try {
    return checkedQuery(entry);
  } catch (err) {
    if (!isOperationOutcomeError(err)) throw err;
    ignored(`${err.message}; this filter was ignored`);
    return undefined;
  }
}

function checkedQuery(entry: string): { type: string; query: string } {
  const match = /^([A-Z][A-Za-z]*)\?(.*)$/s.exec(entry.trim());
  if (!match || !isResourceType(match[1])) throw badRequest(`_typeFilter: '${entry}' is not [resource type]?[search query]`, '_typeFilter');
  const [, type, query] = match;
  let request;
  try {
    request = parseSearchQueryString(type, query, STRICT);
  } catch (err) {
    throw isOperationOutcomeError(err) ? badRequest(`_typeFilter ${entry}: ${err.message}`, '_typeFilter') : err;
  }
  if (request.sort.length > 0 || request.include || request.revinclude || request.summary || request.elements) {
    throw badRequest(`_typeFilter ${entry}: only search criteria are allowed, not result parameters`, '_typeFilter');
  }
  return { type, query };
}

/** What a resource of `type` must match under `_typeFilter`, or undefined when its type has no filter. */
export function typeFilterCondition(typeFilters: Record<string, string[]> | undefined, type: string): SearchFilter | undefined {
  const queries = typeFilters?.[type];
  if (!queries) return undefined;
  return { kind: 'any', filters: queries.map((query) => ({ kind: 'all', filters: parseSearchQueryString(type, query, STRICT).filters })) };
}

/**
 * The resources of `resources` that their type's filters let through: one search per
 * filtered type, by id, so the filters are the search engine's own (a Patient or Group
 * export reads the compartment first, then filters).
 */
export async function keepMatching<T extends Resource>(store: ResourceStore, typeFilters: Record<string, string[]> | undefined, resources: readonly T[]): Promise<T[]> {
  if (!typeFilters) return [...resources];
  const kept = new Set<string>();
  const byType = new Map<string, string[]>();
  for (const r of resources) {
    if (!typeFilters[r.resourceType]) continue;
    const ids = byType.get(r.resourceType) ?? [];
    ids.push(r.id as string);
    byType.set(r.resourceType, ids);
  }
  for (const [type, ids] of byType) {
    const request = parseSearchRequest(type, { _id: ids.join(',') }, { strict: true, defaultCount: ids.length, maxCount: ids.length });
    request.filters.push(typeFilterCondition(typeFilters, type) as SearchFilter);
    for (const r of (await store.search(request)).resources) kept.add(`${type}/${r.id}`);
  }
  return resources.filter((r) => !typeFilters[r.resourceType] || kept.has(`${r.resourceType}/${r.id}`));
}
