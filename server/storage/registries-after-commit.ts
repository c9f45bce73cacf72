import { refreshIfChanged } from './custom-search-parameter-store';
import type { Db } from './sql';
import { refreshStoredProfilesIfChanged } from './stored-profiles';

/**
 * After a transaction commits: what writes inside it changed in the registries every
 * process keeps in memory (custom SearchParameters, stored profiles) reloads, so this
 * process applies it from the next request on.
 */
export async function refreshRegistriesAfterCommit(db: Db): Promise<void> {
  await refreshIfChanged(db);
  await refreshStoredProfilesIfChanged(db);
}
