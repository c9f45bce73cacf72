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
  const own = new Set<string>();
  for (const match of text.matchAll(FULL_URL)) {
    own.add(match[1]);
  }
  return text.replace(UUID, (uuid) => (own.has(uuid) ? copiedId(uuid, copy) : uuid));
}
