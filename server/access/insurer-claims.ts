import type { Claim, Reference } from '@medplum/fhirtypes';
import type { SearchFilter, SearchRequest } from '../search/search-request';
import type { ResourceStore } from '../storage/resource-store';
import type { CareBoundary } from './care-boundary';

/**
 * What an insurer needs to assess a claim is what the claim points to: the patient, the
 * diagnoses, procedures, encounters, prescriptions, referral, coverage and supporting
 * documents (https://hl7.org/fhir/R4/claim.html). R4 has no search parameter for most of
 * these references (diagnosis, procedure, supportingInfo ...), so a filter cannot reach
 * them: instead the insurer's Claims are read when its relationships are looked up
 * (principal-access.ts, reused for RELATIONS_REUSE_MS) and the resources they reference
 * are granted by id. A Claim created or changed since is counted at the next lookup, at
 * most RELATIONS_REUSE_MS later.
 */

/** Claims read per lookup at most: the newest ones (by _lastUpdated) count; older ones show only the Claim itself. */
export const MAX_INSURER_CLAIMS = 5000;
/**
 * Ids granted per type at most (first come, newest claims first): each becomes a bind
 * parameter of every query on the type, and PostgreSQL takes at most 65,535.
 */
export const MAX_REFERENCED_IDS = 20000;
const PAGE_SIZE = 500;

/** Referenced ids per resource type. */
export type ClaimReferences = ReadonlyMap<string, readonly string[]>;

/** A relative literal reference (`Type/id`, optionally versioned); absolute, `urn:` and contained (`#x`) ones name nothing here. */
const RELATIVE = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

/** The references of one Claim that its insurer may follow. */
export function claimReferencesOf(claim: Claim): Reference[] {
  const all: (Reference | undefined)[] = [
    claim.patient,
    ...(claim.diagnosis ?? []).map((d) => d.diagnosisReference),
    ...(claim.procedure ?? []).map((p) => p.procedureReference),
    ...(claim.item ?? []).flatMap((i) => i.encounter ?? []),
    ...(claim.supportingInfo ?? []).map((s) => s.valueReference),
    claim.prescription,
    claim.originalPrescription,
    claim.referral,
    claim.accident?.locationReference,
    ...(claim.insurance ?? []).map((i) => i.coverage),
    ...(claim.related ?? []).map((r) => r.claim),
  ];
  return all.filter((r): r is Reference => r !== undefined);
}

/** The resources referenced by the Claims whose insurer is one of `organizations` (`Organization/…`). */
export async function insurerClaimReferences(store: ResourceStore, organizations: readonly string[]): Promise<ClaimReferences> {
  const found = new Map<string, Set<string>>();
  if (organizations.length === 0) return new Map();
  let request: SearchRequest = {
    resourceType: 'Claim',
    filters: [
      { kind: 'reference', code: 'insurer', entries: [...organizations] },
      // A claim sent in error (to the wrong insurer, for the wrong patient) opens nothing.
      { kind: 'token', code: 'status', not: true, values: [{ code: 'entered-in-error' }] },
    ],
    sort: [{ code: '_lastUpdated', descending: true }],
    count: PAGE_SIZE,
    offset: 0,
    total: 'none',
    warnings: [],
  };
  // Keyset pages (page-cursor.ts): a claim written meanwhile neither repeats nor shifts the others.
  for (let read = 0; read < MAX_INSURER_CLAIMS; ) {
    const page = await store.search({ ...request, count: Math.min(PAGE_SIZE, MAX_INSURER_CLAIMS - read) });
    for (const claim of page.resources) collect(found, claimReferencesOf(claim as Claim));
    read += page.resources.length;
    if (!page.hasMore || !page.next) break;
    request = { ...request, cursor: page.next };
  }
  return new Map([...found].map(([type, ids]) => [type, [...ids]]));
}

function collect(found: Map<string, Set<string>>, references: readonly Reference[]): void {
  for (const { reference } of references) {
    const match = reference ? RELATIVE.exec(reference) : null;
    if (!match) continue;
    const [, type, id] = match;
    let ids = found.get(type);
    if (!ids) found.set(type, (ids = new Set()));
    if (ids.size < MAX_REFERENCED_IDS) ids.add(id);
  }
}

/**
 * `boundary` widened, per type, by the referenced ids: a resource is within reach when the
 * boundary lets it in or a Claim of the insurer references it. The role's policy still
 * decides which types and letters apply; a Consent deny is applied on top (`excluding`).
 */
export function withClaimReferences(boundary: CareBoundary, references: ClaimReferences): CareBoundary {
  return {
    filters(type) {
      const own = boundary.filters(type);
      const ids = references.get(type);
      if (!ids || ids.length === 0 || (own && own.length === 0)) return own;
      // The id filter first: a read of a referenced resource is decided in memory (match-filter-in-memory.ts).
      const referenced: SearchFilter = { kind: 'id', not: false, ids: [...ids] };
      if (own === undefined) return [referenced];
      return [{ kind: 'any', filters: [referenced, own.length === 1 ? own[0] : { kind: 'all', filters: own }] }];
    },
  };
}
