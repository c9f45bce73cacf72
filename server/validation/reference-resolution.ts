import { isJsonObject } from './json-shape';
import type { JsonObject } from './json-shape';

/**
 * The HL7 Java validator's `validateReference` policy (ReferenceValidationPolicy), for
 * literal references inside a container: with no fetcher, the Java validator resolves a
 * reference against the resources of the enclosing Parameters (parameter[].resource, here
 * also part[].resource) and Bundles (entry[].resource, by fullUrl), innermost first.
 *
 * - CHECK_EXISTS (and CHECK_EXISTS_AND_TYPE, CHECK_VALID): a relative `Type/id` reference
 *   that no enclosing container holds is an error;
 * - CHECK_TYPE_IF_EXISTS (and CHECK_EXISTS_AND_TYPE, CHECK_VALID): a resolved resource
 *   whose type the element's targetProfile does not allow is an error.
 *
 * Not handled here, as before: `#id` (ref-1), identifier-only references, `urn:` and other
 * absolute references that match no fullUrl (they may point outside), references in
 * document Bundles (bundle-rules.ts) and references outside any container (resolving those
 * needs stored data). Off by default: the server's own writes do not use it.
 */

export type ReferenceValidationPolicy =
  | 'IGNORE'
  | 'CHECK_TYPE_IF_EXISTS'
  | 'CHECK_EXISTS'
  | 'CHECK_EXISTS_AND_TYPE'
  | 'CHECK_VALID';

const checksExistence = new Set<string>(['CHECK_EXISTS', 'CHECK_EXISTS_AND_TYPE', 'CHECK_VALID']);
const checksType = new Set<string>(['CHECK_TYPE_IF_EXISTS', 'CHECK_EXISTS_AND_TYPE', 'CHECK_VALID']);

const relativeReference = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
const absoluteReference = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const restfulFullUrl = /^(.*\/)[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/;
const historySuffix = /\/_history\/[A-Za-z0-9\-.]{1,64}$/;

interface Container {
  /** Type/id of every resource the container holds. */
  byTypeAndId: Map<string, JsonObject>;
  /** fullUrl of every Bundle entry (empty for Parameters). */
  byFullUrl: Map<string, JsonObject>;
  /** The fullUrl of each entry resource, to resolve relative references against its base. */
  fullUrlOf: Map<JsonObject, string>;
  isDocument: boolean;
}

export class ReferenceResolver {
  private readonly containers: Container[] = [];
  private readonly exists: boolean;
  private readonly type: boolean;

  constructor(policy: string | undefined) {
    this.exists = checksExistence.has(policy ?? '');
    this.type = checksType.has(policy ?? '');
  }

  get active(): boolean {
    return this.exists || this.type;
  }

  /** Runs `walk` (the walk of `resource`) with `resource` as the innermost container if it is one. */
  within(resource: JsonObject, walk: () => void): void {
    const type = resource.resourceType;
    if (!this.active || (type !== 'Parameters' && type !== 'Bundle')) {
      walk();
      return;
    }
    this.containers.push(type === 'Parameters' ? parametersContainer(resource) : bundleContainer(resource));
    try {
      walk();
    } finally {
      this.containers.pop();
    }
  }

  /**
   * Checks one Reference value; returns the text of an error (code structure), if any. `source` is the resource the reference is in (the entry
   * resource, for a contained one); `targetTypes` undefined means any resource type.
   */
  check(reference: JsonObject, targetTypes: readonly string[] | undefined, source: unknown): string | undefined {
    const ref = reference.reference;
    if (this.containers.length === 0 || typeof ref !== 'string' || ref.startsWith('#') || ref.startsWith('urn:')) {
      return undefined;
    }
    if (this.containers[this.containers.length - 1].isDocument) {
      return undefined; // bundle-rules.ts resolves document references
    }
    const relative = relativeReference.exec(ref);
    if (!relative && !absoluteReference.test(ref)) {
      return undefined; // conditional or otherwise uninterpretable reference
    }
    const target = this.resolve(ref, relative, source);
    if (!target) {
      return relative && this.exists ? `Unable to resolve resource with reference '${ref}'` : undefined;
    }
    const found = String(target.resourceType);
    if (this.type && targetTypes && !targetTypes.includes(found)) {
      return `Invalid Resource target type for '${ref}': found ${found}, but expected one of (${targetTypes.join(', ')})`;
    }
    return undefined;
  }

  private resolve(ref: string, relative: RegExpExecArray | null, source: unknown): JsonObject | undefined {
    const unversioned = ref.replace(historySuffix, '');
    for (let i = this.containers.length - 1; i >= 0; i--) {
      const container = this.containers[i];
      if (!relative) {
        const found = container.byFullUrl.get(unversioned);
        if (found) {
          return found;
        }
        continue;
      }
      const fullUrl = isJsonObject(source) ? container.fullUrlOf.get(source) : undefined;
      const base = fullUrl === undefined ? undefined : restfulFullUrl.exec(fullUrl)?.[1];
      const found =
        (base !== undefined ? container.byFullUrl.get(base + unversioned) : undefined) ??
        container.byTypeAndId.get(unversioned) ??
        [...container.byFullUrl].find(([url]) => url.endsWith('/' + unversioned))?.[1];
      if (found) {
        return found;
      }
    }
    return undefined;
  }
}

function emptyContainer(isDocument: boolean): Container {
  return { byTypeAndId: new Map(), byFullUrl: new Map(), fullUrlOf: new Map(), isDocument };
}

function addResource(container: Container, resource: unknown): resource is JsonObject {
  if (!isJsonObject(resource)) {
    return false;
  }
  if (typeof resource.resourceType === 'string' && typeof resource.id === 'string') {
    const key = `${resource.resourceType}/${resource.id}`;
    if (!container.byTypeAndId.has(key)) {
      container.byTypeAndId.set(key, resource);
    }
  }
  return true;
}

function parametersContainer(parameters: JsonObject): Container {
  const container = emptyContainer(false);
  const stack: unknown[] = [parameters.parameter];
  let budget = 100_000;
  while (stack.length > 0 && budget-- > 0) {
    const list = stack.pop();
    if (!Array.isArray(list)) {
      continue;
    }
    for (const parameter of list) {
      if (isJsonObject(parameter)) {
        addResource(container, parameter.resource);
        stack.push(parameter.part);
      }
    }
  }
  return container;
}

function bundleContainer(bundle: JsonObject): Container {
  const container = emptyContainer(bundle.type === 'document');
  for (const entry of Array.isArray(bundle.entry) ? bundle.entry : []) {
    if (!isJsonObject(entry) || !addResource(container, entry.resource)) {
      continue;
    }
    const resource = entry.resource as JsonObject;
    if (typeof entry.fullUrl === 'string') {
      container.fullUrlOf.set(resource, entry.fullUrl);
      if (!container.byFullUrl.has(entry.fullUrl)) {
        container.byFullUrl.set(entry.fullUrl, resource);
      }
    }
  }
  return container;
}
