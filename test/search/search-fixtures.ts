import { readdirSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { SHARED_DATA_DIR } from '../../scripts/shared-data-dir';

const DATA = SHARED_DATA_DIR;

/** HL7 R4 examples of the given types (one resource per file, named `<Type>-<id>.json`). */
export function loadHl7Examples(types: readonly string[]): Resource[] {
  const wanted = new Set(types);
  return readdirSync(`${DATA}/hl7-r4-examples`)
    .filter((f) => f.endsWith('.json') && wanted.has(f.slice(0, f.indexOf('-'))))
    .map((f) => JSON.parse(readFileSync(`${DATA}/hl7-r4-examples/${f}`, 'utf8')) as Resource)
    .filter((r) => wanted.has(r.resourceType));
}

/**
 * Resources of the given types from the first `count` Synthea patient bundles (plus the
 * two info bundles), with references as a server stores them after the transaction:
 * `urn:uuid:` and conditional (`Practitioner?identifier=s|v`) references become `Type/id`.
 */
export function loadSynthea(types: readonly string[], count: number): Resource[] {
  const wanted = new Set(types);
  const files = readdirSync(`${DATA}/synthea`).filter((f) => f.endsWith('.json.gz'));
  const info = files.filter((f) => f.startsWith('0-'));
  const patients = files.filter((f) => !f.startsWith('0-')).sort().slice(0, count);
  const bundles = [...info, ...patients].map(
    (file) => JSON.parse(gunzipSync(readFileSync(`${DATA}/synthea/${file}`)).toString('utf8')) as Bundle
  );
  const targets = new Map<string, string>();
  for (const bundle of bundles) {
    for (const entry of bundle.entry ?? []) {
      const r = entry.resource as (Resource & { identifier?: { system?: string; value?: string }[] }) | undefined;
      if (!r?.id) continue;
      if (entry.fullUrl) targets.set(entry.fullUrl, `${r.resourceType}/${r.id}`);
      for (const id of r.identifier ?? []) targets.set(`${r.resourceType}?identifier=${id.system}|${id.value}`, `${r.resourceType}/${r.id}`);
    }
  }
  const result: Resource[] = [];
  for (const bundle of bundles) {
    for (const entry of bundle.entry ?? []) {
      if (!entry.resource || !wanted.has(entry.resource.resourceType)) continue;
      const json = JSON.stringify(entry.resource).replace(/"reference":"([^"]+)"/g, (whole, ref: string) => {
        const target = targets.get(ref);
        return target ? `"reference":"${target}"` : whole;
      });
      result.push(JSON.parse(json) as Resource);
    }
  }
  return result;
}

/** One resource per (type, id): the HL7 examples and Synthea never share ids, but be safe. */
export function uniqueById(resources: Resource[]): Resource[] {
  const seen = new Set<string>();
  return resources.filter((r) => {
    const key = `${r.resourceType}/${r.id}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
