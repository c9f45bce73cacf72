import { parseSearchRequest } from '../search/parse-search-request';
import { reachesOtherResources, type SearchFilter } from '../search/search-request';
import { patientConfinement } from './patient-confinement';
import type { CareBoundary } from './care-boundary';
import type { Principal } from './principal';
import { type RolePolicy, roleAllows, shippedRolePolicy } from './role-policy';
import { type Permission, type ResourceScope, parseScope, splitScopes } from './scopes';

/**
 * What a token's scopes allow on one resource type for one permission letter:
 * nothing, everything, or the resources matching `filter` (an OR over the scopes that
 * grant it, each the patient compartment and/or the scope's query).
 */
export type Grant = { allowed: false } | { allowed: true; filter?: SearchFilter };

const DENIED: Grant = { allowed: false };
const EVERYTHING: Grant = { allowed: true };

/**
 * The access rules of one principal, computed from its scopes (and, for a user, its
 * role's policy) once and cached per (type, letter). Fails closed at every step: a `patient/` scope without a patient in
 * the token, a `user/` scope without a user and fhirUser, a `system/` scope in a user's
 * token, a scope query the server cannot apply: each grants nothing.
 */
export class ScopeAccess {
  private readonly scopes: ResourceScope[];
  private readonly grants = new Map<string, Grant>();

  constructor(
    readonly principal: Principal,
    private readonly policy: RolePolicy = shippedRolePolicy(),
    private readonly boundary?: CareBoundary,
    /** Patients reached only through a break-the-glass grant (consent-rules.ts). */
    readonly emergencyPatients: readonly string[] = []
  ) {
    this.scopes = splitScopes(principal.scope)
      .map(parseScope)
      .filter((s): s is ResourceScope => s?.kind === 'resource' && usable(s, principal));
  }

  grant(resourceType: string, permission: Permission): Grant {
    const key = `${resourceType} ${permission}`;
    let grant = this.grants.get(key);
    if (!grant) {
      grant = this.compute(resourceType, permission);
      this.grants.set(key, grant);
    }
    return grant;
  }

  /** Types for which `permission` is granted at all (for searches and histories over every type). */
  allows(resourceType: string, permission: Permission): boolean {
    return this.grant(resourceType, permission).allowed;
  }

  private compute(resourceType: string, permission: Permission): Grant {
    // A user's token: its scopes within what the user's role may do (policies/roles.json).
    if (this.principal.userId && !roleAllows(this.policy, this.principal.role ?? '', resourceType, permission)) return DENIED;
    const alternatives: SearchFilter[][] = [];
    let everything = false;
    for (const scope of this.scopes) {
      if (!scope.permissions.has(permission)) continue;
      if (scope.resourceType !== '*' && scope.resourceType !== resourceType) continue;
      const filters = this.scopeFilters(scope, resourceType);
      if (!filters) continue;
      if (filters.length === 0) {
        everything = true;
        break;
      }
      alternatives.push(filters);
    }
    if (alternatives.length === 0 && !everything) return DENIED;
    const all = alternatives.map((f): SearchFilter => (f.length === 1 ? f[0] : { kind: 'all', filters: f }));
    const scoped: SearchFilter[] = everything ? [] : [all.length === 1 ? all[0] : { kind: 'any', filters: all }];
    // The user's relationships (hospital, own record, insurer) narrow whatever the scopes grant.
    const bounded = this.boundary ? this.boundary.filters(resourceType) : [];
    if (bounded === undefined) return DENIED;
    const filters = [...scoped, ...bounded];
    if (filters.length === 0) return EVERYTHING;
    return { allowed: true, filter: filters.length === 1 ? filters[0] : { kind: 'all', filters } };
  }

  /** The filters one scope puts on `resourceType` ([] for none), or undefined when it grants nothing there. */
  private scopeFilters(scope: ResourceScope, resourceType: string): SearchFilter[] | undefined {
    const filters: SearchFilter[] = [];
    if (scope.context === 'patient') {
      const confinement = patientConfinement(resourceType, [this.principal.patient as string]);
      if (!confinement) return undefined;
      filters.push(...confinement);
    }
    if (scope.query !== undefined) {
      const query = queryFilters(resourceType, scope.query);
      if (!query) return undefined;
      filters.push(...query);
    }
    return filters;
  }
}

function usable(scope: ResourceScope, principal: Principal): boolean {
  switch (scope.context) {
    case 'patient':
      return typeof principal.patient === 'string' && principal.patient !== '';
    case 'user':
      return Boolean(principal.userId && principal.fhirUser);
    case 'system':
      return !principal.userId;
  }
}

/**
 * A SMART v2 scope query as search filters, or undefined when any part of it cannot be
 * applied exactly: an unknown parameter or modifier, a malformed value, anything but
 * plain filters (`_sort`, `_include`, `_count` ...), or a chain (which would reach
 * other resources the scope does not name).
 */
function queryFilters(resourceType: string, query: string): SearchFilter[] | undefined {
  const params: Record<string, string[]> = {};
  for (const [name, value] of new URLSearchParams(query)) (params[name] ??= []).push(value);
  let request;
  try {
    request = parseSearchRequest(resourceType, params, { strict: true, defaultCount: 1, maxCount: 1 });
  } catch {
    return undefined;
  }
  const onlyFilters =
    request.sort.length === 0 &&
    !request.include?.length &&
    !request.revinclude?.length &&
    request.total === 'none' &&
    request.summary === undefined &&
    request.elements === undefined &&
    request.count === 1 &&
    !('_count' in params) &&
    request.filters.length > 0 &&
    !request.filters.some(reachesOtherResources);
  return onlyFilters ? request.filters : undefined;
}
