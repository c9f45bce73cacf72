import type { StructureDefinition } from '@medplum/fhirtypes';
import { OFFICIAL_RESOURCE_PROFILES, officialProfile, r4DefinitionUrl } from '../validation/official-profiles';
import { profileUnusableReason } from '../validation/profile-validation';
import type { Db } from './sql';

/**
 * The StructureDefinitions stored here, by canonical url (the latest written of each),
 * held in memory so that every write can check the profiles it claims without a query
 * (validation/claimed-profiles.ts). Every process loads them at start and again when the
 * table's fingerprint moves (checked each SEARCH_PARAMETER_REFRESH_MS by the job round);
 * the process that writes one reloads as soon as the write commits.
 */
let byUrl: ReadonlyMap<string, StructureDefinition> = new Map();
let loadedFingerprint: string | undefined;
let changedInTransaction = false;
let generation = 0;

export function storedProfile(url: string): StructureDefinition | undefined {
  return byUrl.get(url.split('|')[0]);
}

/** Every write adds a row or a version, so the row count and the sum of versions move with each. */
async function fingerprint(db: Db): Promise<string> {
  const result = await db.raw<{ rows: { n: string; versions: string | null }[] }>(
    'SELECT count(*) AS n, sum(version_id) AS versions FROM "StructureDefinition"'
  );
  const row = result.rows[0];
  return `${row.n}:${row.versions ?? 0}`;
}

/** Reloads the stored profiles when the table changed since they were loaded. */
export async function refreshStoredProfiles(db: Db): Promise<void> {
  const current = await fingerprint(db);
  if (current === loadedFingerprint) return;
  const result = await db.raw<{ rows: { content: StructureDefinition }[] }>(
    `SELECT content FROM "StructureDefinition" WHERE NOT deleted AND content->>'url' IS NOT NULL ORDER BY last_updated, id`
  );
  const next = new Map<string, StructureDefinition>();
  // Ordered by time: the latest of a url stays.
  for (const { content } of result.rows) next.set(content.url, content);
  byUrl = next;
  loadedFingerprint = current;
  generation++;
}

/** A StructureDefinition was written: reload now (autocommit), or once the caller's transaction has committed. */
export async function storedProfilesWritten(db: Db): Promise<void> {
  if ((db as { isTransaction?: boolean }).isTransaction) changedInTransaction = true;
  else await refreshStoredProfiles(db);
}

/** After a transaction of the Repository commits: reloads when a StructureDefinition was written inside one. */
export async function refreshStoredProfilesIfChanged(db: Db): Promise<void> {
  if (!changedInTransaction) return;
  changedInTransaction = false;
  await refreshStoredProfiles(db);
}

/** A profile by canonical: one R4 publishes, else one stored here. What every write checks its claims against. */
export function knownProfile(url: string): StructureDefinition | undefined {
  return officialProfile(url) ?? storedProfile(url);
}

/** Moves whenever the stored profiles are reloaded: the CapabilityStatement's supportedProfile lists follow it. */
export function storedProfilesGeneration(): number {
  return generation;
}

/** The canonical urls of the profiles of a resource type that writes and $validate apply: R4's, then those stored here. */
export function supportedProfiles(resourceType: string): string[] {
  // R4's from the index, without reading their definitions (the first /metadata of a process would wait for them).
  const official = Object.entries(OFFICIAL_RESOURCE_PROFILES)
    .filter(([, type]) => type === resourceType)
    .map(([name]) => r4DefinitionUrl(name));
  const stored = [...byUrl.values()].filter((sd) => sd.type === resourceType && sd.kind === 'resource' && !profileUnusableReason(sd, knownProfile)).map((sd) => sd.url);
  return [...new Set([...official, ...stored])];
}
