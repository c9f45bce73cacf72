import { badRequest } from '../core/outcome';
import type { SortRule } from './search-request';
import { indexedParam } from './supported-parameters';

/** Sort keys served by the fixed columns of every table. */
const FIXED_SORTS: ReadonlySet<string> = new Set(['_lastUpdated', '_id']);

export function isSortable(resourceType: string, code: string): boolean {
  return FIXED_SORTS.has(code) || indexedParam(resourceType, code)?.handler.sort !== undefined;
}

/** `_sort=-date,_id`: keys in order, `-` for descending (R4 search.html#sort). */
export function parseSortParameter(
  resourceType: string,
  value: string,
  ignore: (name: string, reason: string) => void
): SortRule[] {
  const rules: SortRule[] = [];
  for (const key of value.split(',')) {
    const descending = key.startsWith('-');
    const code = descending ? key.slice(1) : key;
    if (code.length === 0) throw badRequest(`Empty sort key in _sort=${value}`, '_sort');
    if (!isSortable(resourceType, code)) {
      ignore(`_sort=${key}`, `Sorting by this parameter is not supported on ${resourceType}`);
      continue;
    }
    rules.push({ code, descending });
  }
  return rules;
}
