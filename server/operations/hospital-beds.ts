import type { Location, Organization } from '@medplum/fhirtypes';
import type { ResourceStore } from '../storage/resource-store';
import { groupLocations, type Bed } from './beds';
import { referencedId } from './location-ancestry';
import { organizationHierarchy } from './organization-tree';
import { searchEveryPage } from '../storage/search-every-page';

export interface HospitalBeds {
  organization: Organization & { id: string };
  beds: Bed[];
  /** Every Location of the hospital, beds or not (buildings and wards carry the positions). */
  locations: (Location & { id: string })[];
}

/**
 * The beds of every top-level organisation (no partOf): a department's beds roll up into
 * its hospital. Grouped by the same rule as bedsOf (beds.ts), so a hospital's figures are
 * the same here as at `Organization/[id]/$bed-availability`. Reads every Location once,
 * in pages, and the organisations they name with those above them.
 */
export async function bedsByHospital(store: ResourceStore): Promise<HospitalBeds[]> {
  const all = await searchEveryPage<Location>(store, 'Location', {});
  const locations = new Map(all.map((l) => [l.id, l]));
  const managers = all
    .map((l) => referencedId(l.managingOrganization?.reference, 'Organization'))
    .filter((id): id is string => id !== undefined)
    .map((id) => `Organization/${id}`);
  const hierarchy = await organizationHierarchy(store, managers);
  const hospitals: HospitalBeds[] = [];
  for (const [hospital, group] of groupLocations(locations, (ref) => hierarchy.topOf(ref))) {
    const organization = hierarchy.get(hospital);
    if (organization) hospitals.push({ organization, ...group });
  }
  return hospitals;
}
