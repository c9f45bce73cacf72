import { forbidden } from '../core/outcome';
import type { SearchFilter, SearchRequest } from '../search/search-request';
import type { Grant, ScopeAccess } from './scope-access';
import type { Permission } from './scopes';

/**
 * Searches as a principal may run them (guarded-store.ts): each gets the grant's access
 * filter (patient compartment, scope query) in SQL, and chains and `_has` get the filter
 * of the types they reach, so totals, `_summary=count` and paging only ever see
 * permitted resources.
 */

export const LETTER_NAMES: Record<Permission, string> = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' };

/** The grant for `permission` on `resourceType`, or 403 naming what the token lacks. */
export function requireGrant(access: ScopeAccess, resourceType: string, permission: Permission): Extract<Grant, { allowed: true }> {
  const grant = access.grant(resourceType, permission);
  if (!grant.allowed) {
    throw forbidden(`The access token does not grant ${LETTER_NAMES[permission]} access to ${resourceType} (scopes: ${access.principal.scope || 'none'})`);
  }
  return grant;
}

/** Each request confined; over several types (system search), types without `s` are left out. */
export function confineAll(access: ScopeAccess, requests: readonly SearchRequest[]): SearchRequest[] {
  const permitted = requests.length > 1 ? requests.filter((r) => access.allows(r.resourceType, 's')) : requests;
  if (permitted.length === 0) throw forbidden(`The access token does not grant search access to any of these types (scopes: ${access.principal.scope || 'none'})`);
  return permitted.map((r) => confine(access, r));
}

export function confine(access: ScopeAccess, request: SearchRequest): SearchRequest {
  const grant = requireGrant(access, request.resourceType, 's');
  const filters = request.filters.map((f) => confineFilter(access, f));
  // `Observation?subject=Patient/me` under a patient token already is the compartment:
  // an OR over more GIN columns would only cost the planner and the executor.
  if (grant.filter && !impliedBy(filters, grant.filter)) filters.push(grant.filter);
  return { ...request, filters };
}

/** Chains and `_has` reach other types: each needs `s` there and searches only what the principal may see. */
function confineFilter(access: ScopeAccess, filter: SearchFilter): SearchFilter {
  switch (filter.kind) {
    case 'chain':
    case 'has': {
      const type = filter.kind === 'chain' ? filter.targetType : filter.sourceType;
      const grant = requireGrant(access, type, 's');
      const inner = confineFilter(access, filter.filter);
      return { ...filter, filter: grant.filter ? { kind: 'all', filters: [inner, grant.filter] } : inner };
    }
    case 'any':
    case 'all':
      return { ...filter, filters: filter.filters.map((f) => confineFilter(access, f)) };
    case 'not':
      return { ...filter, filter: confineFilter(access, filter.filter) };
    default:
      return filter;
  }
}

/**
 * Whether the ANDed `filters` already restrict to `rule` (so adding it changes nothing):
 * a reference or id rule is implied by a filter on the same parameter whose values are
 * all among the rule's; an OR rule by any of its branches, an AND rule by all of them.
 */
function impliedBy(filters: readonly SearchFilter[], rule: SearchFilter): boolean {
  switch (rule.kind) {
    case 'any':
      return rule.filters.some((branch) => impliedBy(filters, branch));
    case 'all':
      return rule.filters.every((part) => impliedBy(filters, part));
    case 'reference':
      return filters.some((f) => f.kind === 'reference' && f.code === rule.code && f.entries.every((e) => rule.entries.includes(e)));
    case 'id':
      return !rule.not && filters.some((f) => f.kind === 'id' && !f.not && f.ids.every((id) => rule.ids.includes(id)));
    default:
      return false;
  }
}
