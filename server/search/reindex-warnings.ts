import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { issue } from '../core/outcome';
import type { SearchRequest } from './search-request';
import { indexedParam } from './supported-parameters';

/**
 * A custom parameter is searchable as soon as its SearchParameter is stored: resources
 * written since then are indexed, older ones as its reindex gets to them. Until the
 * reindex completes, a search that uses it says so, with the Task to watch, instead of
 * silently missing matches.
 */
export function reindexWarnings(request: SearchRequest): OperationOutcomeIssue[] {
  const codes = new Set<string>();
  for (const filter of request.filters) {
    if (filter.kind !== 'has' && 'code' in filter && typeof filter.code === 'string') codes.add(filter.code);
  }
  for (const rule of request.sort) codes.add(rule.code);
  const warnings: OperationOutcomeIssue[] = [];
  for (const code of codes) {
    const pending = indexedParam(request.resourceType, code)?.def.custom?.pendingReindex;
    if (pending) {
      warnings.push(
        issue(
          'warning',
          'incomplete',
          `${request.resourceType} resources stored before search parameter '${code}' was defined are still being indexed (${pending}); results may be incomplete until it completes`,
          code
        )
      );
    }
  }
  return warnings;
}
