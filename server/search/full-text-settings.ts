/**
 * Whether `_content` (full-text search over every word of a resource) is indexed:
 * `SEARCH_CONTENT` (config.ts), off by default for its write cost (docs/architecture.md,
 * "Full-text search"). Process-wide, like the parameters it adds: every process on one
 * database must be started with the same setting, since a process without it writes no
 * words for the resources it stores. Set once at start, before the schema is prepared.
 */
import { indexedParametersChanged } from './custom-search-parameter-registry';

let contentSearch = false;
let generation = 0;

export function setContentSearch(enabled: boolean): void {
  if (enabled === contentSearch) return;
  contentSearch = enabled;
  generation++;
  // Write statements, the CapabilityStatement and other caches derived from the parameters.
  indexedParametersChanged();
}

export function contentSearchEnabled(): boolean {
  return contentSearch;
}

/** Moves whenever the setting changes: caches of the indexed parameters key on it. */
export function fullTextSettingsGeneration(): number {
  return generation;
}
