import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { SHARED_DATA_DIR } from '../../scripts/shared-data-dir';

/** Synthea's transaction and batch Bundles, read at run time from ../shared/data (see its README). */
export const SYNTHEA_DIR = join(SHARED_DATA_DIR, 'synthea');

export interface SyntheaEntry {
  fullUrl?: string;
  resource: Record<string, any>;
  request: { method: string; url: string; ifNoneExist?: string };
}

export interface SyntheaBundle {
  resourceType: 'Bundle';
  type: string;
  entry: SyntheaEntry[];
}

export function readSyntheaBundle(file: string): SyntheaBundle {
  return JSON.parse(gunzipSync(readFileSync(join(SYNTHEA_DIR, file))).toString('utf8'));
}

/** The two batch Bundles every patient bundle's conditional references point into: hospitals first, then practitioners. */
export function informationFiles(): string[] {
  const files = readdirSync(SYNTHEA_DIR);
  return [files.find((f) => f.startsWith('0-hospitalInformation')), files.find((f) => f.startsWith('0-practitionerInformation'))].map((f) => {
    if (!f) throw new Error(`Synthea information bundles missing from ${SYNTHEA_DIR}`);
    return f;
  });
}

/** The `count` smallest patient bundles (by file size), smallest first: real data that loads fast. */
export function smallestPatientFiles(count: number): string[] {
  return readdirSync(SYNTHEA_DIR)
    .filter((f) => f.endsWith('.json.gz') && !f.startsWith('0-'))
    .map((f) => ({ f, size: statSync(join(SYNTHEA_DIR, f)).size }))
    .sort((a, b) => a.size - b.size || a.f.localeCompare(b.f))
    .slice(0, count)
    .map(({ f }) => f);
}

/** Every `reference` string in a resource (extensions and contained resources included), by its JSON path. */
export function referencesByPath(node: unknown, path = '', found = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(node)) {
    node.forEach((item, i) => referencesByPath(item, `${path}[${i}]`, found));
  } else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'reference' && typeof value === 'string') found.set(`${path}.${key}`, value);
      else referencesByPath(value, `${path}.${key}`, found);
    }
  }
  return found;
}

/** A resource's content apart from what the server assigns (id, meta.versionId, meta.lastUpdated) and its reference values. */
export function contentBesidesReferences(resource: Record<string, any>): unknown {
  const { id: _id, meta, ...rest } = resource;
  const { versionId: _versionId, lastUpdated: _lastUpdated, ...kept } = meta ?? {};
  const content = Object.keys(kept).length > 0 ? { ...rest, meta: kept } : rest;
  return JSON.parse(JSON.stringify(content), (key, value) => (key === 'reference' && typeof value === 'string' ? '(reference)' : value));
}

/** `Type?identifier=system|value` for every identifier of a resource: the conditional references that name it. */
export function identifierCriteria(resource: Record<string, any>): string[] {
  return ((resource.identifier ?? []) as { system?: string; value?: string }[]).map((i) => `${resource.resourceType}?identifier=${i.system ?? ''}|${i.value ?? ''}`);
}
