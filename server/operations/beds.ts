import type { Coding, Location } from '@medplum/fhirtypes';
import { OperationOutcomeError, issue, outcome } from '../core/outcome';
import type { ResourceStore } from '../storage/resource-store';
import { ancestorsOf, membershipOf, referencedId, type LocationById } from './location-ancestry';
import { organizationWithDepartments } from './organization-tree';
import { MAX_MATCHES, searchByValues } from '../storage/search-every-page';

/**
 * The bed model: a bed is a Location with physicalType `bd`
 * (https://hl7.org/fhir/R4/codesystem-location-physical-type.html), inside wards (`wa`),
 * rooms (`ro`), buildings (`bu`) … by Location.partOf, managed by a hospital or one of its
 * departments (Organization.partOf) through Location.managingOrganization. Whether a bed
 * is taken is its operationalStatus (v2-0116 bed status,
 * https://hl7.org/fhir/R4/location-definitions.html#Location.operationalStatus).
 * Everything here is computed from the Locations as they are now: no counter to drift.
 */

export const LOCATION_PHYSICAL_TYPE = 'http://terminology.hl7.org/CodeSystem/location-physical-type';
export const BED_STATUS = 'http://terminology.hl7.org/CodeSystem/v2-0116';
export const OCCUPIED: Coding = { system: BED_STATUS, code: 'O', display: 'Occupied' };
export const UNOCCUPIED: Coding = { system: BED_STATUS, code: 'U', display: 'Unoccupied' };
/** The kind of a bed that neither it nor any Location it is partOf gives a type. */
export const GENERAL_KIND = 'general';

export interface Bed {
  location: Location & { id: string };
  /** Normalised (see normaliseKind). */
  kind: string;
  /** `Organization/id` of the hospital or department it belongs to (the nearest managingOrganization that counts). */
  organization: string;
}

export function isBed(location: Location): boolean {
  return (location.physicalType?.coding ?? []).some(
    (c) => c.code === 'bd' && (c.system === undefined || c.system === LOCATION_PHYSICAL_TYPE)
  );
}

/** A bed that can take a patient now: active (or no status) and unoccupied (or no bed status at all). */
export function isFree(location: Location): boolean {
  if (!isBed(location)) return false;
  if (location.status !== undefined && location.status !== 'active') return false;
  const status = location.operationalStatus;
  return status === undefined || (status.code === 'U' && (status.system === undefined || status.system === BED_STATUS));
}

/**
 * A bed that is part of a hospital's capacity (the `total` of $bed-availability): every
 * bed but an inactive one, which R4 defines as "no longer used". A suspended, closed or
 * occupied bed still counts; it is just not free.
 */
export function isInService(location: Location): boolean {
  return isBed(location) && location.status !== 'inactive';
}

/**
 * Kinds are compared without regard to case or spacing (`ICU`, `icu`, ` Icu ` are one
 * kind): trimmed, inner whitespace collapsed, lower-cased. A client's `kind=ICU` goes
 * through the same function before it is compared.
 */
export function normaliseKind(text: string): string {
  return text.trim().replace(/\s+/g, ' ').toLowerCase();
}

/**
 * The kind of a bed: its own Location.type, else that of the nearest Location it is
 * partOf that has one (`ancestors` nearest first: room, ward, building …), else
 * 'general'. Of a Location's types the first coding code counts (v3-RoleCode `ICU`,
 * `PEDICU` …: what a client can match exactly), else the first type text. Normalised
 * by normaliseKind.
 */
export function bedKind(bed: Location, ancestors: Location[]): string {
  for (const location of [bed, ...ancestors]) {
    const kind = declaredKind(location);
    if (kind !== undefined) return kind;
  }
  return GENERAL_KIND;
}

function declaredKind(location: Location): string | undefined {
  const types = location.type ?? [];
  for (const type of types) {
    for (const coding of type.coding ?? []) {
      if (coding.code?.trim()) return normaliseKind(coding.code);
    }
  }
  for (const type of types) {
    if (type.text?.trim()) return normaliseKind(type.text);
  }
  return undefined;
}

/**
 * The beds among `locations`, by group: a bed belongs to every group of which it or a
 * Location it is partOf (any depth) has a managingOrganization (`groupOf` maps an
 * `Organization/id` to its group, undefined for none). Also the non-bed Locations of
 * each group, for positions.
 */
export function groupLocations(
  locations: LocationById,
  groupOf: (organization: string) => string | undefined
): Map<string, { beds: Bed[]; locations: (Location & { id: string })[] }> {
  const groups = new Map<string, { beds: Bed[]; locations: (Location & { id: string })[] }>();
  for (const location of locations.values()) {
    const ancestors = ancestorsOf(location, locations);
    const membership = membershipOf(location, ancestors, groupOf);
    if (membership.size === 0) continue;
    const kind = isBed(location) ? bedKind(location, ancestors) : undefined;
    for (const [group, organization] of membership) {
      let entry = groups.get(group);
      if (!entry) groups.set(group, (entry = { beds: [], locations: [] }));
      entry.locations.push(location);
      if (kind !== undefined) entry.beds.push({ location, kind, organization });
    }
  }
  return groups;
}

/** The beds of an organisation and of its departments (Organization.partOf, any depth), with their kinds. */
export async function bedsOf(store: ResourceStore, organizationId: string): Promise<Bed[]> {
  const organizations = await organizationWithDepartments(store, organizationId);
  const locations = await locationsBelongingTo(store, organizations);
  const group = `Organization/${organizationId}`;
  return groupLocations(locations, (ref) => (organizations.has(ref) ? group : undefined)).get(group)?.beds ?? [];
}

/**
 * The Locations managed by one of `organizations`, those partOf them (any depth), and the
 * Locations above those (read for their types only: a bed's kind may come from a ward or
 * building that another organisation manages). Each level is one paged search.
 */
async function locationsBelongingTo(store: ResourceStore, organizations: ReadonlySet<string>): Promise<LocationById> {
  const byId = new Map<string, Location & { id: string }>();
  const addNew = (found: (Location & { id: string })[]): (Location & { id: string })[] => {
    const fresh = found.filter((l) => !byId.has(l.id));
    for (const location of fresh) byId.set(location.id, location);
    if (byId.size > MAX_MATCHES) {
      throw new OperationOutcomeError(422, outcome([issue('error', 'too-costly', `More than ${MAX_MATCHES} Locations belong to this organisation; the server refuses to count them`)]));
    }
    return fresh;
  };
  let below = addNew(await searchByValues<Location>(store, 'Location', 'organization', organizations));
  while (below.length > 0) {
    below = addNew(await searchByValues<Location>(store, 'Location', 'partof', below.map((l) => `Location/${l.id}`)));
  }
  const tried = new Set<string>();
  const missingParents = (): string[] =>
    [...byId.values()]
      .map((l) => referencedId(l.partOf?.reference, 'Location'))
      .filter((id): id is string => id !== undefined && !byId.has(id) && !tried.has(id));
  for (let wanted = missingParents(); wanted.length > 0; wanted = missingParents()) {
    for (const id of wanted) tried.add(id);
    addNew(await searchByValues<Location>(store, 'Location', '_id', wanted));
  }
  return byId;
}
