import type { ResourceStore } from '../storage/resource-store';
import { type Relations, relationsOf } from './care-boundary';
import { consentRules, NO_CONSENT_RULES } from './consent-rules';
import type { Principal } from './principal';
import { ScopeAccess } from './scope-access';

/**
 * How long a principal's relationships (the organisations it works for and their
 * departments) are reused across its requests: a new PractitionerRole or department
 * counts within this long. Consents are read for every request.
 */
export const RELATIONS_REUSE_MS = 5000;

const cache = new WeakMap<Principal, { relations: Promise<Relations | undefined>; until: number }>();

function cachedRelations(principal: Principal, store: ResourceStore, now: number): Promise<Relations | undefined> {
  const cached = cache.get(principal);
  if (cached && cached.until > now) return cached.relations;
  const relations = relationsOf(principal, store);
  cache.set(principal, { relations, until: now + RELATIONS_REUSE_MS });
  // A failed lookup is not kept: the next request tries again.
  relations.catch(() => cache.delete(principal));
  return relations;
}

/**
 * The access rules of one request by a verified token's principal: its scopes, its
 * role's policy, its relationships and the Consents that name it or the request's
 * purposes of use (`purposes`, from X-Purpose-Of-Use).
 */
export async function accessFor(principal: Principal, store: ResourceStore, purposes: readonly string[] = [], now: number = Date.now()): Promise<ScopeAccess> {
  const relations = await cachedRelations(principal, store, now);
  if (!relations) return new ScopeAccess(principal);
  // No actors: a patient's own record, which no Consent narrows (and nothing to look up).
  const rules = relations.actors.length > 0 ? await consentRules(store, relations.actors, purposes) : NO_CONSENT_RULES;
  return new ScopeAccess(principal, undefined, relations.boundary(rules));
}
