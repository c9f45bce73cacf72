import type { ResourceStore } from '../storage/resource-store';
import { careBoundary } from './care-boundary';
import type { Principal } from './principal';
import { ScopeAccess } from './scope-access';

/**
 * How long a principal's computed access (its scopes, role and care boundary: the
 * organisations it works for and their departments) is reused across its requests.
 * A new PractitionerRole or department counts within this long.
 */
export const ACCESS_REUSE_MS = 5000;

const cache = new WeakMap<Principal, { access: Promise<ScopeAccess>; until: number }>();

/** The access rules of a verified token's principal (the verifier reuses Principal objects per token). */
export function accessFor(principal: Principal, store: ResourceStore, now: number = Date.now()): Promise<ScopeAccess> {
  const cached = cache.get(principal);
  if (cached && cached.until > now) return cached.access;
  const access = careBoundary(principal, store).then((boundary) => new ScopeAccess(principal, undefined, boundary));
  cache.set(principal, { access, until: now + ACCESS_REUSE_MS });
  // A failed lookup is not kept: the next request tries again.
  access.catch(() => cache.delete(principal));
  return access;
}
