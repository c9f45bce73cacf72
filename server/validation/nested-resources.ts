import { isJsonObject, type JsonObject } from './json-shape';

/** Bundles in Bundles in contained resources … deeper than this are not followed. */
const MAX_DEPTH = 10;

/**
 * A resource, then the resources inside it (its contained resources, a Bundle's entries),
 * each with the path it is found at: what profile checks visit, since HL7's validator
 * applies the profiles each of them claims, wherever it sits.
 */
export function* resourcesWithin(resource: JsonObject, path: string, depth = 0): Generator<{ resource: JsonObject; path: string }> {
  yield { resource, path };
  if (depth >= MAX_DEPTH) return;
  const contained = Array.isArray(resource.contained) ? resource.contained : [];
  for (const [i, inner] of contained.entries()) {
    if (isJsonObject(inner)) yield* resourcesWithin(inner, `${path}.contained[${i}]`, depth + 1);
  }
  if (resource.resourceType !== 'Bundle' || !Array.isArray(resource.entry)) return;
  for (const [i, entry] of resource.entry.entries()) {
    if (isJsonObject(entry) && isJsonObject(entry.resource)) yield* resourcesWithin(entry.resource, `${path}.entry[${i}].resource`, depth + 1);
  }
}
