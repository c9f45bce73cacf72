import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DATA_DIR, type FhirResource } from './example-resources';

/**
 * The Synthea transaction bundles in ../shared/data/synthea, resolved the way a
 * transaction would resolve them, so that their resources can be written one by one
 * with PUT (the server does not process transaction bundles yet):
 * `urn:uuid:X` → `Type/X` (every entry's resource already has id X), and the
 * conditional references `Practitioner?identifier=sys|val` (also Organization,
 * Location) → the `Type/id` of the resource with that identifier in the two
 * information bundles, which are loaded first.
 */
export const SYNTHEA_DIR = path.join(DATA_DIR, 'synthea');

export interface BundleJson {
  type?: string;
  entry?: { fullUrl?: string; resource?: FhirResource }[];
}

export interface SyntheaFiles {
  /** `0-hospitalInformation*` then `0-practitionerInformation*`. */
  information: string[];
  /** The 120 patient bundles, sorted by name. */
  patients: string[];
}

export function syntheaFiles(): SyntheaFiles {
  const files = readdirSync(SYNTHEA_DIR)
    .filter((file) => file.endsWith('.json.gz'))
    .sort();
  return {
    information: [
      ...files.filter((f) => f.startsWith('0-hospitalInformation')),
      ...files.filter((f) => f.startsWith('0-practitionerInformation')),
    ],
    patients: files.filter((f) => !f.startsWith('0-')),
  };
}

export function readBundleText(file: string): string {
  return gunzipSync(readFileSync(path.join(SYNTHEA_DIR, file))).toString('utf8');
}

/** `Type?identifier=system|value` → `Type/id`, for every identifier of every information resource. */
export function conditionalReferenceTargets(informationBundles: BundleJson[]): Map<string, string> {
  const targets = new Map<string, string>();
  for (const bundle of informationBundles) {
    for (const { resource } of bundle.entry ?? []) {
      if (!resource?.id) {
        continue;
      }
      for (const identifier of (resource.identifier as { system?: string; value?: string }[] | undefined) ?? []) {
        targets.set(`${resource.resourceType}?identifier=${identifier.system ?? ''}|${identifier.value ?? ''}`, `${resource.resourceType}/${resource.id}`);
      }
    }
  }
  return targets;
}

export interface ResolveCounts {
  /** Conditional or urn:uuid references that matched nothing (left as they were). */
  unresolved: number;
  firstUnresolved?: string;
}

/**
 * The bundle's resources in entry order, with every `reference` rewritten in place.
 * References to contained resources (`#referral`) and logical references
 * (`{ identifier }` without `reference`) are left alone.
 */
export function resolveBundle(bundle: BundleJson, conditional: ReadonlyMap<string, string>, counts: ResolveCounts): FhirResource[] {
  const byFullUrl = new Map<string, string>();
  const resources: FhirResource[] = [];
  for (const { fullUrl, resource } of bundle.entry ?? []) {
    if (!resource) {
      continue;
    }
    if (!resource.id) {
      throw new Error(`a ${resource.resourceType} entry without id (${fullUrl ?? 'no fullUrl'}): the loader writes with the bundle's ids`);
    }
    if (fullUrl) {
      byFullUrl.set(fullUrl, `${resource.resourceType}/${resource.id}`);
    }
    resources.push(resource);
  }
  const resolve = (reference: string): string => {
    const target = reference.startsWith('urn:uuid:') ? byFullUrl.get(reference) : reference.includes('?') ? conditional.get(decodeURIComponent(reference)) : reference;
    if (target === undefined) {
      counts.unresolved++;
      counts.firstUnresolved ??= reference;
      return reference;
    }
    return target;
  };
  for (const resource of resources) {
    rewriteReferences(resource, resolve);
  }
  return resources;
}

function rewriteReferences(node: unknown, resolve: (reference: string) => string): void {
  if (Array.isArray(node)) {
    for (const item of node) {
      rewriteReferences(item, resolve);
    }
    return;
  }
  if (node === null || typeof node !== 'object') {
    return;
  }
  const record = node as Record<string, unknown>;
  for (const [key, value] of Object.entries(record)) {
    if (key === 'reference' && typeof value === 'string' && !value.startsWith('#')) {
      record[key] = resolve(value);
    } else if (typeof value === 'object') {
      rewriteReferences(value, resolve);
    }
  }
}
