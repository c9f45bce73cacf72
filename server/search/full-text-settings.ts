/**
 * Whether `_content` (full-text search over every word of a resource) is indexed:
 * `SEARCH_CONTENT` (config.ts), off by default for its write cost (docs/architecture.md,
 * "Full-text search"). Process-wide, like the parameters it adds: every process on one
 * database must be started with the same setting, since a process without it writes no
 * words for the resources it stores. Set once at start, before the schema is prepared.
 */
import { indexedParametersChanged } from './custom-search-parameter-registry';

let contentSearch = false;

export function setContentSearch(enabled: boolean): void {
  if (enabled === contentSearch) return;
  contentSearch = enabled;
  // The compiled parameters, write statements, the CapabilityStatement: every cache derived from them.
  indexedParametersChanged();
}

export function contentSearchEnabled(): boolean {
  return contentSearch;
}
