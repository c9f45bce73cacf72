import { badRequest } from '../core/outcome';
import { normalizeCriteria } from '../storage/conditional-match';
import type { ResourceStore } from '../storage/resource-store';
import { isResourceType } from '../validation/structure-definitions';

/** `Patient?identifier=a|b` → the key under which equal criteria meet: `Patient?identifier=a%7Cb`. */
export function criteriaKey(resourceType: string, criteria: string): string {
  return `${resourceType}?${normalizeCriteria(stripType(resourceType, criteria))}`;
}

/** `If-None-Exist` is sometimes sent as `Patient?identifier=…` (as in HL7's own examples). */
export function stripType(resourceType: string, criteria: string): string {
  return criteria.startsWith(`${resourceType}?`) ? criteria.slice(resourceType.length + 1) : criteria;
}

/**
 * Resolves conditional references (http.html#trules): each must find exactly one
 * resource, else the entry fails with 400 naming the reference. `inBundle`: criteria
 * keys of the bundle's own conditional creates and their targets, which win over the
 * database (the resource may not exist before this bundle).
 */
export async function resolveConditionalReferences(
  references: Iterable<string>,
  repo: ResourceStore,
  inBundle: ReadonlyMap<string, string>,
  at: (reference: string) => string
): Promise<Map<string, string>> {
  const resolved = new Map<string, string>();
  for (const reference of references) {
    const question = reference.indexOf('?');
    const resourceType = reference.slice(0, question);
    if (!isResourceType(resourceType)) {
      throw badRequest(`${at(reference)}: the conditional reference ${reference} names no resource type`, at(reference));
    }
    const key = criteriaKey(resourceType, reference.slice(question + 1));
    const known = inBundle.get(key);
    if (known !== undefined) {
      resolved.set(reference, known);
      continue;
    }
    const ids = await repo.matchCriteria(resourceType, reference.slice(question + 1), false);
    if (ids.length !== 1) {
      throw badRequest(
        `${at(reference)}: the conditional reference ${reference} ${ids.length === 0 ? 'matches no resource' : 'matches more than one resource'}`,
        at(reference)
      );
    }
    resolved.set(reference, `${resourceType}/${ids[0]}`);
  }
  return resolved;
}
