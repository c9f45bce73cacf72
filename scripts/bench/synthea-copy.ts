import { createHash } from 'node:crypto';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const FULL_URL = /"fullUrl"\s*:\s*"urn:uuid:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"/g;

/**
 * The id that entry `id` gets in copy `copy` (1, 2, …): a name-based uuid (version 5
 * layout over SHA-1 of copy and id), so every run makes the same copies and copies
 * never collide with the originals or with each other.
 */
export function copiedId(id: string, copy: number): string {
  const hash = createHash('sha1').update(`fhir-bench-copy:${copy}:${id}`).digest('hex');
  const variant = ((parseInt(hash[16], 16) & 0x3) | 0x8).toString(16);
  return `${hash.slice(0, 8)}-${hash.slice(8, 12)}-5${hash.slice(13, 16)}-${variant}${hash.slice(17, 20)}-${hash.slice(20, 32)}`;
}

/**
 * A patient bundle's JSON text as copy `copy` (0 is the original): every uuid that is
 * the id of one of the bundle's own entries is replaced wherever it occurs — resource
 * ids, fullUrls, `urn:uuid:` references, and identifiers that repeat the id (Synthea's
 * patient identifier and MRN) — so a copy is a new patient with the same clinical
 * story. Uuids of other resources (the shared Organizations, Locations and
 * Practitioners, referenced by identifier) stay, so the copies share them.
 */
export function copyBundleText(text: string, copy: number): string {
  if (copy === 0) {
    return text;
  }
  return replaceOwnIds(text, (uuid) => copiedId(uuid, copy));
}

/**
 * The bundle's JSON text with each of its own entries' uuids replaced by `idFor(uuid)`
 * wherever it occurs (called once per uuid, in order of first appearance), as
 * copyBundleText does.
 */
export function replaceOwnIds(text: string, idFor: (uuid: string) => string): string {
  const own = new Map<string, string | undefined>();
  for (const match of text.matchAll(FULL_URL)) {
    own.set(match[1], undefined);
  }
  return text.replace(UUID, (uuid) => {
    if (!own.has(uuid)) return uuid;
    let id = own.get(uuid);
    if (id === undefined) {
      id = idFor(uuid);
      own.set(uuid, id);
    }
    return id;
  });
}
