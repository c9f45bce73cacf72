import type { Knex } from 'knex';
import { badRequest } from '../core/outcome';
import { applySearchFilters } from '../search/build-search-sql';
import { parseSearchQueryString } from '../search/parse-search-request';
import type { SearchRequest } from '../search/search-request';
import type { Db } from './sql';
import { resolveTokenSets } from './token-set-resolution';

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
  const request = criteriaRequest(resourceType, normalized, limits);
  await tx.raw('SELECT pg_advisory_xact_lock(?, hashtext(?))', [CONDITIONAL_LOCK_SPACE, `${resourceType}?${normalized}`]);
  return matchRows(tx, resourceType, request);
}

/** The same search without the lock: for conditional references, which only read. */
export async function findMatches(
  db: Db,
  resourceType: string,
  criteria: string,
  limits: { defaultCount: number; maxCount: number }
): Promise<MatchedRow[]> {
  return matchRows(db, resourceType, criteriaRequest(resourceType, normalizeCriteria(criteria), limits));
}

function criteriaRequest(resourceType: string, normalized: string, limits: { defaultCount: number; maxCount: number }): SearchRequest {
  if (normalized === '') {
    throw badRequest('A conditional interaction needs search criteria');
  }
  return parseSearchQueryString(resourceType, normalized, { strict: true, ...limits });
}

async function matchRows(db: Db, resourceType: string, request: SearchRequest): Promise<MatchedRow[]> {
  const query = db(resourceType).select('id', 'version_id');
  applySearchFilters(query, await resolveTokenSets(db, request));
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
