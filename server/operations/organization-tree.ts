import type { Organization } from '@medplum/fhirtypes';
import type { ResourceStore } from '../storage/resource-store';
import { referencedId } from './location-ancestry';
import { searchByValues } from '../storage/search-every-page';

/** `Organization/id` of the organisation and of its departments (Organization.partOf, any depth; cycles end the walk). */
export async function organizationWithDepartments(store: ResourceStore, organizationId: string): Promise<Set<string>> {
  const found = new Set([`Organization/${organizationId}`]);
  let frontier = [...found];
  while (frontier.length > 0) {
    const departments = await searchByValues<Organization>(store, 'Organization', 'partof', frontier);
    frontier = departments.map((o) => `Organization/${o.id}`).filter((ref) => !found.has(ref));
    for (const ref of frontier) found.add(ref);
  }
  return found;
}

/** Organisations and the chain of organisations they are partOf, read once. */
export interface OrganizationHierarchy {
  get(reference: string): (Organization & { id: string }) | undefined;
  /**
   * `Organization/id` of the top of `reference`'s partOf chain (the hospital of a
   * department), or undefined when `reference` names no organisation the store holds. A
   * partOf to an organisation that does not exist (or a cycle) ends the chain where it is.
   */
  topOf(reference: string): string | undefined;
}

/** `organizations` (`Organization/id` references) and every organisation above them. */
export async function organizationHierarchy(store: ResourceStore, organizations: Iterable<string>): Promise<OrganizationHierarchy> {
  const byId = new Map<string, Organization & { id: string }>();
  const tried = new Set<string>();
  let wanted = [...new Set(organizations)].map((ref) => referencedId(ref, 'Organization')).filter((id): id is string => id !== undefined);
  while (wanted.length > 0) {
    for (const id of wanted) tried.add(id);
    const found = await searchByValues<Organization>(store, 'Organization', '_id', wanted);
    for (const organization of found) byId.set(organization.id, organization);
    wanted = found
      .map((o) => referencedId(o.partOf?.reference, 'Organization'))
      .filter((id): id is string => id !== undefined && !tried.has(id));
  }
  const get = (reference: string): (Organization & { id: string }) | undefined => {
    const id = referencedId(reference, 'Organization');
    return id === undefined ? undefined : byId.get(id);
  };
  return {
    get,
    topOf(reference) {
      let current = get(reference);
      if (!current) return undefined;
      const seen = new Set([current.id]);
      for (;;) {
        const parentId = referencedId(current.partOf?.reference, 'Organization');
        const parent = parentId === undefined ? undefined : byId.get(parentId);
        if (!parent || seen.has(parent.id)) return `Organization/${current.id}`;
        seen.add(parent.id);
        current = parent;
      }
    },
  };
}
