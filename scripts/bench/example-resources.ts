import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { SHARED_DATA_DIR } from '../shared-data-dir';

export type FhirResource = { resourceType: string; id?: string; meta?: unknown; [key: string]: unknown };

export const DATA_DIR = SHARED_DATA_DIR;

/** The official R4 examples of one type (`Patient-*.json`), as published. */
export function hl7Examples(resourceType: string): FhirResource[] {
  const dir = path.join(DATA_DIR, 'hl7-r4-examples');
  return readdirSync(dir)
    .filter((file) => file.startsWith(`${resourceType}-`) && file.endsWith('.json'))
    .sort()
    .map((file) => JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as FhirResource)
    .filter((resource) => resource.resourceType === resourceType);
}

/** A resource as a client creates it: no id, no meta (the server assigns both). */
export function forCreate(resource: FhirResource): FhirResource {
  const { id: _id, meta: _meta, ...rest } = resource;
  return rest as FhirResource;
}

/** Every resource of the first `bundles` Synthea bundles (sorted by file name). */
export function syntheaResources(bundles: number): FhirResource[] {
  const dir = path.join(DATA_DIR, 'synthea');
  const files = readdirSync(dir)
    .filter((file) => file.endsWith('.json.gz'))
    .sort()
    .slice(0, bundles);
  const resources: FhirResource[] = [];
  for (const file of files) {
    const bundle = JSON.parse(gunzipSync(readFileSync(path.join(dir, file))).toString('utf8')) as {
      entry?: { resource?: FhirResource }[];
    };
    for (const entry of bundle.entry ?? []) {
      if (entry.resource) {
        resources.push(entry.resource);
      }
    }
  }
  return resources;
}

const BENCH_EXTENSION = 'http://example.org/fhir/StructureDefinition/bench-update';

/** The change an update makes: one extension whose value counts the updates. */
export function withUpdateMark(resource: FhirResource, counter: number): FhirResource {
  const others = ((resource.extension as { url: string }[] | undefined) ?? []).filter((e) => e.url !== BENCH_EXTENSION);
  return { ...resource, extension: [...others, { url: BENCH_EXTENSION, valueInteger: counter }] };
}
