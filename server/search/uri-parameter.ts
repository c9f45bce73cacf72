import type { Resource } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import { paramColumn } from './column-names';
import type { TypedNode } from './compile-path-expression';
import type { ParameterType } from './parameter-type';
import { arrayEntrySort, arrayOverlap, columnMissing } from './parameter-type';
import { unescapeSearchValue } from './search-value-escaping';

/**
 * Uri parameters (R4 search.html#uri): one `text[]` column per parameter (GIN), so that
 * every form is one indexed `&&`:
 *   - each uri as written (exact match, case-sensitive);
 *   - a canonical `url|version` also as `url` (any version matches the bare url), and a
 *     conformance resource's `url` also as `url|version` from its `version` element, so
 *     `ValueSet?url=http://x|2.0` finds version 2.0;
 *   - for hierarchical URLs (`scheme://...`), every path-segment ancestor including the
 *     uri itself, behind a marker, without a trailing `/`: `:below=http://a.org/fhir`
 *     is the entry `<marker>http://a.org/fhir`.
 * `:above=q` is an exact match on q's own ancestors. URNs have no hierarchy, so
 * `:above`/`:below` on them match exactly.
 */
const BELOW_MARKER = '\u001f';
const HIERARCHICAL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]/;

export interface UriFilter {
  kind: 'uri';
  code: string;
  /** Entries to overlap with the column. */
  entries: string[];
}

function trimSlash(uri: string): string {
  return uri.length > 1 && uri.endsWith('/') ? uri.replace(/\/+$/, '') : uri;
}

/** `http://a.org/fhir/ValueSet/1` → `http://a.org`, `http://a.org/fhir`, ..., the uri itself (no trailing `/`). */
export function uriAncestors(uri: string): string[] {
  const base = trimSlash(uri.split(/[?#|]/, 1)[0]);
  if (!HIERARCHICAL.test(base)) return [];
  const authorityEnd = base.indexOf('/', base.indexOf('//') + 2);
  const result: string[] = [];
  for (let i = authorityEnd; i > 0; i = base.indexOf('/', i + 1)) result.push(base.slice(0, i));
  result.push(base);
  return [...new Set(result)];
}

function uriEntries(resource: Resource | undefined, terms: readonly string[], nodes: readonly TypedNode[]): string[] | null {
  const entries = new Set<string>();
  for (const { value } of nodes) {
    if (typeof value !== 'string' || value.length === 0) continue;
    entries.add(value);
    const bar = value.indexOf('|');
    if (bar > 0) entries.add(value.slice(0, bar));
    for (const ancestor of uriAncestors(value)) entries.add(BELOW_MARKER + ancestor);
  }
  // Conformance resources keep their version beside the url (ValueSet.url + ValueSet.version).
  const version = (resource as { url?: unknown; version?: unknown } | undefined)?.version;
  const url = (resource as { url?: unknown } | undefined)?.url;
  if (typeof version === 'string' && typeof url === 'string' && entries.has(url) && terms.includes(`${resource?.resourceType}.url`)) {
    entries.add(`${url}|${version}`);
  }
  return entries.size > 0 ? [...entries] : null;
}

function queryEntries(modifier: string | undefined, value: string): string[] {
  if (modifier === 'below') {
    return HIERARCHICAL.test(value) ? [BELOW_MARKER + trimSlash(value)] : [value];
  }
  if (modifier === 'above') {
    const ancestors = uriAncestors(value);
    // A stored uri may be written with or without its trailing slash.
    return ancestors.length === 0 ? [value] : [value, ...ancestors.flatMap((a) => [a, `${a}/`])];
  }
  return [value];
}

export const uriParameter: ParameterType = {
  columns(param) {
    return [{ name: paramColumn(param.def.code), sqlType: 'text[]', indexMethod: 'gin' }];
  },

  extract(param, nodes, out, resource) {
    out[paramColumn(param.def.code)] = uriEntries(resource, param.def.terms, nodes);
  },

  parse(param, modifier, values): UriFilter {
    const code = param.def.code;
    if (modifier !== undefined && modifier !== 'below' && modifier !== 'above') {
      throw badRequest(`Modifier :${modifier} is not supported for uri parameter ${code}`, code);
    }
    const entries = values.flatMap((v) => queryEntries(modifier, unescapeSearchValue(v)));
    return { kind: 'uri', code, entries: [...new Set(entries)] };
  },

  condition(param, filter, column) {
    if (filter.kind !== 'uri') throw new Error(`uri parameter cannot apply a ${filter.kind} filter`);
    return arrayOverlap(column(paramColumn(param.def.code)), filter.entries);
  },

  missing(param, missing, column) {
    return columnMissing(column(paramColumn(param.def.code)), missing);
  },

  // By the uri as written (not the `:below` ancestor entries).
  sort(param, descending, column) {
    return arrayEntrySort(column(paramColumn(param.def.code)), descending, `NOT starts_with(e, chr(${BELOW_MARKER.charCodeAt(0)}))`);
  },
};
