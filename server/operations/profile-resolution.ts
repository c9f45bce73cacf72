import type { StructureDefinition } from '@medplum/fhirtypes';
import { isOperationOutcomeError } from '../core/outcome';
import type { ResourceStore } from '../storage/resource-store';
import { officialProfile } from '../validation/official-profiles';
import type { ProfileResolver } from '../validation/profile-validation';
import { latestByCanonical } from './terminology-operation-support';

/** Profiles loaded for one validation, with those that refer to other profiles followed up to this many. */
const MAX_PROFILES = 200;

/**
 * The profiles a validation names, and every profile they name in turn (extension
 * definitions, nested profiles, reference targets): the official R4 ones first, then the
 * latest StructureDefinition of that canonical the caller may read. Loaded before the
 * (synchronous) validation runs, which then resolves from this map.
 */
export async function loadProfiles(repo: ResourceStore, urls: readonly string[]): Promise<ProfileResolver> {
  const found = new Map<string, StructureDefinition | undefined>();
  const queue = [...urls];
  while (queue.length > 0 && found.size < MAX_PROFILES) {
    const canonical = queue.shift() as string;
    const url = canonical.split('|')[0];
    if (found.has(url)) continue;
    const sd = officialProfile(url) ?? (await storedProfile(repo, url));
    found.set(url, sd);
    if (!sd) continue;
    // A profile published as a differential is laid over its base, which must be loaded too.
    if (!sd.snapshot?.element?.length && sd.baseDefinition) queue.push(sd.baseDefinition);
    for (const element of [...(sd.snapshot?.element ?? []), ...(sd.differential?.element ?? [])]) {
      for (const type of element.type ?? []) {
        for (const next of [...(type.profile ?? []), ...(type.targetProfile ?? [])]) {
          if (!found.has(next.split('|')[0])) queue.push(next);
        }
      }
    }
  }
  return (url) => found.get(url.split('|')[0]);
}

async function storedProfile(repo: ResourceStore, url: string): Promise<StructureDefinition | undefined> {
  // The base definitions are not stored; skip the search for them.
  if (/^http:\/\/hl7\.org\/fhir\/StructureDefinition\/[A-Za-z]+$/.test(url)) return undefined;
  try {
    return await latestByCanonical<StructureDefinition>(repo, 'StructureDefinition', url);
  } catch (err) {
    // A caller who may not read StructureDefinitions validates against the official profiles only.
    if (isOperationOutcomeError(err) && err.status === 403) return undefined;
    throw err;
  }
}
