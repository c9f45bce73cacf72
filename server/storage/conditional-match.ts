import type { Knex } from 'knex';
import { badRequest } from '../core/outcome';
import { applySearchFilters } from '../search/build-search-sql';
import { parseSearchQueryString } from '../search/parse-search-request';

export interface MatchedRow {
  id: string;
  version_id: number;
}

/**
 * Finds the resources a conditional interaction's criteria select, after taking a
 * transaction-scoped advisory lock on (type, criteria). Two processes evaluating the same
 * criteria are thereby serialised by PostgreSQL itself: the second one's search runs
 * after the first commits and sees what it created (READ COMMITTED takes a fresh
 * snapshot per statement). At most two rows are fetched: none, one, or "several".
 */
export async function lockAndMatch(
  tx: Knex.Transaction,
  resourceType: string,
  criteria: string,
  limits: { defaultCount: number; maxCount: number }
): Promise<MatchedRow[]> {
  const normalized = normalizeCriteria(criteria);
  if (normalized === '') {
    throw badRequest('A conditional interaction needs search criteria');
  }
  const request = parseSearchQueryString(resourceType, normalized, { strict: true, ...limits });
  await tx.raw('SELECT pg_advisory_xact_lock(?, hashtext(?))', [CONDITIONAL_LOCK_SPACE, `${resourceType}?${normalized}`]);
  const query = tx(resourceType).select('id', 'version_id');
  applySearchFilters(query, request);
  return query.limit(2);
}

/** A fixed first key keeps these locks apart from any other advisory-lock user. */
const CONDITIONAL_LOCK_SPACE = 0x46484952; // "FHIR"

/** Same criteria in another order or encoding must take the same lock. */
export function normalizeCriteria(criteria: string): string {
  const params = new URLSearchParams(criteria.replace(/^\?/, ''));
  const pairs = [...params.entries()].filter(([key]) => key !== '');
  pairs.sort(([a, av], [b, bv]) => (a === b ? av.localeCompare(bv) : a.localeCompare(b)));
  return new URLSearchParams(pairs).toString();
}
