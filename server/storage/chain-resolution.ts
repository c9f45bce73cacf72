import type { SearchFilter } from '../search/search-request';

/**
 * Up to this many chain targets are inlined as constants; beyond it the chain stays a
 * subquery (a set that large matches often, so the planner's guess does little harm).
 */
export const MAX_INLINED_CHAIN_TARGETS = 1000;

/** Ids of live resources of `resourceType` matching `filter`, through the read path; at most `limit`. */
export type FindIds = (resourceType: string, filter: SearchFilter, limit: number) => Promise<string[]>;

/**
 * Turns each chain (`subject:Patient.name=x`), innermost first, into a plain reference
 * filter on the targets' `Type/id`s, found by a query of their own. Why: as one statement
 * the targets are an InitPlan array whose size PostgreSQL cannot estimate, and with
 * ORDER BY … LIMIT it walks the sort index of the big table filtering every row — the
 * whole table when the chain matches little or nothing (EXPLAIN in docs/architecture.md).
 * With constants, the column statistics pick the GIN index for rare targets and the sort
 * index for common ones. `_has` stays a subquery (its inner side has constants and
 * statistics already); chains nested inside it are resolved too.
 */
export async function resolveChainFilter(resourceType: string, filter: SearchFilter, findIds: FindIds): Promise<SearchFilter> {
  if (filter.kind === 'not') {
    return { ...filter, filter: await resolveChainFilter(resourceType, filter.filter, findIds) };
  }
  if (filter.kind === 'all' || filter.kind === 'any') {
    return { ...filter, filters: await Promise.all(filter.filters.map((f) => resolveChainFilter(resourceType, f, findIds))) };
  }
  if (filter.kind === 'has') {
    return { ...filter, filter: await resolveChainFilter(filter.sourceType, filter.filter, findIds) };
  }
  if (filter.kind !== 'chain') return filter;
  const inner = await resolveChainFilter(filter.targetType, filter.filter, findIds);
  const ids = await findIds(filter.targetType, inner, MAX_INLINED_CHAIN_TARGETS + 1);
  if (ids.length > MAX_INLINED_CHAIN_TARGETS) return { ...filter, filter: inner };
  return { kind: 'reference', code: filter.code, entries: ids.map((id) => `${filter.targetType}/${id}`) };
}
