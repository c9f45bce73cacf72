import type { Location } from '@medplum/fhirtypes';
import { normalizeReference } from '../search/reference-parameter';

export type LocationById = ReadonlyMap<string, Location & { id: string }>;

/** The id a `Type/id` reference names, when it is a relative reference of that type (as searches match them). */
export function referencedId(reference: string | undefined, type: string): string | undefined {
  const normalized = reference ? normalizeReference(reference) : undefined;
  return normalized?.startsWith(`${type}/`) ? normalized.slice(type.length + 1) : undefined;
}

/**
 * The Locations `location` is partOf, nearest first (room, ward, building …), as far as
 * `byId` holds them. Data may hold a partOf cycle; it ends the chain instead of looping.
 */
export function ancestorsOf(location: Location & { id: string }, byId: LocationById): (Location & { id: string })[] {
  const chain: (Location & { id: string })[] = [];
  const seen = new Set([location.id]);
  let parentId = referencedId(location.partOf?.reference, 'Location');
  while (parentId !== undefined && !seen.has(parentId)) {
    const parent = byId.get(parentId);
    if (!parent) break;
    chain.push(parent);
    seen.add(parentId);
    parentId = referencedId(parent.partOf?.reference, 'Location');
  }
  return chain;
}

/**
 * The groups (hospitals, or "the organisation asked about") a Location belongs to, each
 * with the `Organization/id` that puts it there: its own managingOrganization or, nearest
 * first, that of a Location it is partOf (any depth). `groupOf` maps an organisation
 * reference to its group, undefined for an organisation that counts for none.
 */
export function membershipOf(
  location: Location,
  ancestors: readonly Location[],
  groupOf: (organization: string) => string | undefined
): Map<string, string> {
  const groups = new Map<string, string>();
  for (const each of [location, ...ancestors]) {
    const organizationId = referencedId(each.managingOrganization?.reference, 'Organization');
    if (organizationId === undefined) continue;
    const organization = `Organization/${organizationId}`;
    const group = groupOf(organization);
    if (group !== undefined && !groups.has(group)) groups.set(group, organization);
  }
  return groups;
}
