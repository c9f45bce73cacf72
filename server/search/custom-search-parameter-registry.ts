import type { SearchParamDef } from './search-parameter-definitions';

/**
 * The custom search parameters this process currently applies, per resource type. The
 * source of truth is the SearchParameter table in PostgreSQL; storage loads it at start
 * and whenever the registry version there moves (see storage/custom-search-parameter-store.ts),
 * then replaces this snapshot in one assignment. `generation` lets the caches that are
 * derived from the parameters (compiled parameters, write statements, the
 * CapabilityStatement) notice the change with one integer comparison.
 */
let byType: ReadonlyMap<string, ReadonlyMap<string, SearchParamDef>> = new Map();
let generation = 0;
/** The database's registry version the snapshot was loaded at (-1: never loaded). */
let loadedVersion = -1;

const EMPTY: ReadonlyMap<string, SearchParamDef> = new Map();

export function customSearchParamDefs(resourceType: string): ReadonlyMap<string, SearchParamDef> {
  return byType.get(resourceType) ?? EMPTY;
}

/** Every custom definition, per resource type. */
export function allCustomSearchParamDefs(): ReadonlyMap<string, ReadonlyMap<string, SearchParamDef>> {
  return byType;
}

/** Increases whenever the set of parameters (or their reindex state) changes in this process. */
export function searchParameterGeneration(): number {
  return generation;
}

export function loadedRegistryVersion(): number {
  return loadedVersion;
}

export function replaceCustomSearchParameters(
  defs: ReadonlyMap<string, ReadonlyMap<string, SearchParamDef>>,
  registryVersion: number
): void {
  byType = defs;
  loadedVersion = registryVersion;
  generation++;
}

/** Something else changed which parameters are indexed (SEARCH_CONTENT): the derived caches start again. */
export function indexedParametersChanged(): void {
  generation++;
}
