import { isJsonObject } from './json-shape';

/**
 * dom-2..dom-5 (R4 DomainResource): the rules for contained resources, natively.
 * dom-3's FHIRPath form walks descendants() once per contained resource; this walks the
 * container once.
 */

type JsonObject = Record<string, unknown>;

/** [message, path] pairs for a resource that has contained resources. */
export function containedProblems(resource: JsonObject, path: string): [string, string][] {
  const problems: [string, string][] = [];
  const contained = resource.contained as unknown[];
  const localRefs = collectLocalReferences(resource);
  contained.forEach((c, i) => {
    if (!isJsonObject(c)) {
      return; // reported by the structure walk
    }
    const at = `${path}.contained[${i}]`;
    if (c.contained !== undefined) {
      problems.push(['dom-2: a contained resource must not contain resources', at]);
    }
    const meta = c.meta;
    if (isJsonObject(meta)) {
      if (meta.versionId !== undefined || meta.lastUpdated !== undefined) {
        problems.push(['dom-4: a contained resource must not have meta.versionId or meta.lastUpdated', at]);
      }
      if (meta.security !== undefined) {
        problems.push(['dom-5: a contained resource must not have a security label', at]);
      }
    }
    const referencedFromContainer = typeof c.id === 'string' && localRefs.has('#' + c.id);
    if (!referencedFromContainer && !collectLocalReferences(c).has('#')) {
      problems.push([
        `dom-3: the contained resource '${String(c.id)}' is not referenced from elsewhere in the resource, and does not refer to its container`,
        at,
      ]);
    }
  });
  return problems;
}

/** Every string starting with '#' (references, canonicals, uris), outside the narrative. */
function collectLocalReferences(root: JsonObject): Set<string> {
  const found = new Set<string>();
  const stack: unknown[] = [root];
  let budget = 100_000; // bounded: the structure walk reports anything absurd
  while (stack.length > 0 && budget-- > 0) {
    const value = stack.pop();
    if (typeof value === 'string') {
      if (value.startsWith('#')) {
        found.add(value);
      }
    } else if (Array.isArray(value)) {
      for (const item of value) {
        stack.push(item);
      }
    } else if (isJsonObject(value)) {
      for (const key in value) {
        if (key !== 'text' && key !== 'div') {
          stack.push(value[key]);
        }
      }
    }
  }
  return found;
}
