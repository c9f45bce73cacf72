import type { BundleEntry } from '@medplum/fhirtypes';

/**
 * The `entry` member of a response Bundle, to spread into it: absent when there are no
 * entries, because FHIR JSON has no empty arrays (our own $validate rejects `entry: []`).
 */
export function entryMember(entry: BundleEntry[]): { entry?: BundleEntry[] } {
  return entry.length > 0 ? { entry } : {};
}
