import type { ResourceStore } from '../storage/resource-store';
import { type Relations, type RelationsOptions, relationsOf } from './care-boundary';
import { consentRules, NO_CONSENT_RULES } from './consent-rules';
import type { ConsentWatch } from './consent-watch';
import type { Principal } from './principal';
import { ScopeAccess } from './scope-access';

/**
 * How long a principal's relationships (the organisations it works for and their
 * departments) are reused across its requests: a new PractitionerRole or department
 * counts within this long. The Consent rules are reused only while no Consent has changed
 * (ConsentWatch) and no provision period has started or ended; otherwise they are read
 * for every request.
 */
export const RELATIONS_REUSE_MS = 5000;

interface CachedAccess {
  relations: Promise<Relations | undefined>;
  /** The access when no Consent names the principal: the common case, so its grants are computed once. */
  plain?: ScopeAccess;
  /** Per purposes of use: the access the Consents of one ConsentWatch epoch make, until a provision period turns. */
  byConsents?: Map<string, { epoch: number; validUntil: number; access: ScopeAccess }>;
  until: number;
}

/** The settings of one server process that shape access (the same for all its requests). */
export interface AccessOptions extends RelationsOptions {
  /** When given and live, Consent rules are reused until a Consent changes. */
  consentWatch?: ConsentWatch;
}

const cache = new WeakMap<Principal, CachedAccess>();

function cached(principal: Principal, store: ResourceStore, options: RelationsOptions, now: number): CachedAccess {
  const hit = cache.get(principal);
  if (hit && hit.until > now) return hit;
  const entry: CachedAccess = { relations: relationsOf(principal, store, options), until: now + RELATIONS_REUSE_MS };
  cache.set(principal, entry);
  // A failed lookup is not kept: the next request tries again.
  entry.relations.catch(() => cache.delete(principal));
  return entry;
}

/**
 * The access rules of one request by a verified token's principal: its scopes, its
 * role's policy, its relationships and the Consents that name it or the request's
 * purposes of use (`purposes`, from X-Purpose-Of-Use). `options` are the server's settings
 * of relationships (config.ts), the same for every request of a process.
 */
export async function accessFor(
  principal: Principal,
  store: ResourceStore,
  purposes: readonly string[] = [],
  options: AccessOptions = {},
  now: number = Date.now()
): Promise<ScopeAccess> {
  const entry = cached(principal, store, options, now);
  const relations = await entry.relations;
  // No actors: a backend service, or a patient's own record, which no Consent narrows (and nothing to look up).
  if (!relations || relations.actors.length === 0) return (entry.plain ??= new ScopeAccess(principal, undefined, relations?.boundary(NO_CONSENT_RULES)));
  const watch = options.consentWatch;
  const key = purposes.join(' ');
  const hit = watch?.live ? entry.byConsents?.get(key) : undefined;
  if (hit && watch && hit.epoch === watch.epoch && now < hit.validUntil) return hit.access;
  // The epoch before the search: a Consent changed while it runs makes what it found stale at once.
  const epoch = watch?.epoch;
  const rules = await consentRules(store, relations.actors, purposes, new Date(now));
  const access =
    rules === NO_CONSENT_RULES
      ? (entry.plain ??= new ScopeAccess(principal, undefined, relations.boundary(rules)))
      : new ScopeAccess(principal, undefined, relations.boundary(rules), rules.emergency);
  if (watch?.live && epoch !== undefined) (entry.byConsents ??= new Map()).set(key, { epoch, validUntil: rules.changesAt ?? Infinity, access });
  return access;
}
