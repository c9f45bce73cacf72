import type { SearchParameter } from '@medplum/fhirtypes';
import { customSearchParamDefinitions, STATUSES_IN_EFFECT } from '../search/custom-search-parameter-definitions';
import { replaceCustomSearchParameters } from '../search/custom-search-parameter-registry';
import type { SearchParamDef } from '../search/search-parameter-definitions';
import type { Db } from './sql';

/**
 * The registry of custom search parameters is the SearchParameter table itself (those in
 * effect), plus which of them still have a reindex running. Every process loads it at
 * start and again whenever `search_parameter_registry.version` moves.
 */
export interface LoadedRegistry {
  version: number;
  defs: Map<string, Map<string, SearchParamDef>>;
  /** Stored parameters that cannot be applied (stored before a rule existed, or by hand), with why. */
  skipped: { id: string; reason: string }[];
}

interface StoredParameter {
  id: string;
  content: SearchParameter;
  task: string | null;
}

export async function registryVersion(db: Db): Promise<number> {
  const result = await db.raw<{ rows: { version: number }[] }>('SELECT version FROM search_parameter_registry');
  return Number(result.rows[0]?.version ?? 0);
}

export async function bumpRegistryVersion(db: Db): Promise<number> {
  const result = await db.raw<{ rows: { version: number }[] }>(
    'UPDATE search_parameter_registry SET version = version + 1 RETURNING version'
  );
  return Number(result.rows[0].version);
}

export async function loadCustomSearchParameters(db: Db): Promise<LoadedRegistry> {
  // The version first: a change committed in between makes it stale, so the next check reloads.
  const version = await registryVersion(db);
  const stored = await db.raw<{ rows: StoredParameter[] }>(
    `SELECT sp.id, sp.content,
            (SELECT j.id FROM reindex_job j
              WHERE j.search_parameter_id = sp.id AND j.search_parameter_version = sp.version_id
                AND j.status IN ('pending', 'running') LIMIT 1) AS task
       FROM "SearchParameter" sp
      WHERE NOT sp.deleted AND sp.content->>'status' = ANY(?)
      ORDER BY sp.id`,
    [[...STATUSES_IN_EFFECT]]
  );
  const defs = new Map<string, Map<string, SearchParamDef>>();
  const skipped: LoadedRegistry['skipped'] = [];
  for (const row of stored.rows) {
    let perType: Map<string, SearchParamDef>;
    try {
      perType = customSearchParamDefinitions(row.content, {
        reference: `SearchParameter/${row.id}`,
        pendingReindex: row.task ? `Task/${row.task}` : undefined,
      });
    } catch (err) {
      skipped.push({ id: row.id, reason: err instanceof Error ? err.message : String(err) });
      continue;
    }
    for (const [type, def] of perType) {
      let byCode = defs.get(type);
      if (!byCode) defs.set(type, (byCode = new Map()));
      const column = def.code.toLowerCase();
      if ([...byCode.keys()].some((c) => c.toLowerCase() === column)) {
        skipped.push({ id: row.id, reason: `${type} already has a custom parameter '${def.code}'` });
        continue;
      }
      byCode.set(def.code, def);
    }
  }
  return { version, defs, skipped };
}

/** Loads the registry and makes it this process's snapshot. */
let changedInTransaction = false;

/** A SearchParameter was written inside a caller's transaction: reload once it has committed. */
export function markRegistryChanged(): void {
  changedInTransaction = true;
}

/**
 * After a transaction of the Repository commits: reloads the registry when a
 * SearchParameter was written inside one, so that this process answers with it from the
 * next request on (other processes: within their refresh interval).
 */
export async function refreshIfChanged(db: Db): Promise<void> {
  if (!changedInTransaction) return;
  changedInTransaction = false;
  await refreshCustomSearchParameters(db);
}

export async function refreshCustomSearchParameters(db: Db): Promise<LoadedRegistry> {
  const loaded = await loadCustomSearchParameters(db);
  replaceCustomSearchParameters(loaded.defs, loaded.version);
  return loaded;
}
