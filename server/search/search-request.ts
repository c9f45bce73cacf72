import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { CompositeFilter } from './composite-parameter';
import type { NearFilter } from './near-parameter';
import type { TextSearchFilter } from './text-search-parameter';
import type { PageCursor } from './page-cursor';
import type { NumberFilter } from './number-parameter';
import type { QuantityFilter } from './quantity-parameter';
import type { UriFilter } from './uri-parameter';

/**
 * A parsed search: what `parseSearchRequest` produces and `applySearch` turns into SQL.
 * Filters are ANDed (one per repeated parameter); the values inside a filter are ORed
 * (the comma-separated list).
 */
export interface SearchRequest {
  resourceType: string;
  filters: SearchFilter[];
  /** Explicit `_sort` keys, in order; `applySearch` appends `id` as the final tie-break. */
  sort: SortRule[];
  count: number;
  offset: number;
  /** `_cursor`: the position a `next` / `previous` link starts from (see page-cursor.ts). */
  cursor?: PageCursor;
  total: 'none' | 'estimate' | 'accurate';
  /** Raw `_summary` value (validated: true, text, data, count, false). */
  summary?: string;
  /** Raw `_elements` list. */
  elements?: string[];
  format?: string;
  pretty?: string;
  /** One issue per ignored parameter (lenient mode) or adjusted value (`_count` above the maximum). */
  warnings: OperationOutcomeIssue[];
  /** The `[name, value]` pairs of the query that were ignored (lenient mode): the self link leaves them out. */
  ignored?: [string, string][];
  /** `_include` rules, in the order given (see parse-include-parameter.ts). */
  include?: IncludeRule[];
  /** `_revinclude` rules. */
  revinclude?: IncludeRule[];
}

/**
 * One `_include` / `_revinclude` value: `Source:param[:Target]`, `Source:*`, or `*`.
 * For `_include` the references go from `sourceType` (a match, or with `iterate` any
 * included resource of that type) to the included resources; for `_revinclude` the
 * included resources are of `sourceType` and refer to a match.
 */
export interface IncludeRule {
  /** `*` only for `_include=*`: every reference parameter of every resource's type. */
  sourceType: string;
  /** A reference parameter code of `sourceType`, or `*` for all of them. */
  code: string;
  /** Only references to this type count. */
  targetType?: string;
  /** `:iterate` (R4 also `:recurse`): applied to included resources too, repeatedly. */
  iterate: boolean;
}

export type SearchFilter =
  | IdFilter
  | LastUpdatedFilter
  | TokenFilter
  | TokenTextFilter
  | TokenSetFilter
  | OfTypeFilter
  | DateFilter
  | ReferenceFilter
  | ReferenceTreeFilter
  | StringFilter
  | NumberFilter
  | QuantityFilter
  | UriFilter
  | CompositeFilter
  | NearFilter
  | TextSearchFilter
  | MissingFilter
  | ChainFilter
  | HasFilter
  | AnyFilter
  | AllFilter
  | NotFilter
  | CodingAnywhereFilter;

/**
 * A Coding with one of these system and code pairs anywhere in the resource: access rules
 * only (a Consent provision's `code`: "if this code is found in an instance").
 */
export interface CodingAnywhereFilter {
  kind: 'coding-anywhere';
  codings: { system: string; code: string }[];
}

/** Any of several filters (a compartment: `subject` or `performer` refers to the patient). */
export interface AnyFilter {
  kind: 'any';
  filters: SearchFilter[];
}

/** None of what `filter` matches (access rules: a patient's data removed by a Consent deny). */
export interface NotFilter {
  kind: 'not';
  filter: SearchFilter;
}

/** Every one of several filters: one alternative of an access rule (compartment and a scope's query). */
export interface AllFilter {
  kind: 'all';
  filters: SearchFilter[];
}

/**
 * `subject:Patient.name=peter`: the reference parameter `code` points to a resource of
 * `targetType` that matches `filter` (itself possibly another chain).
 */
export interface ChainFilter {
  kind: 'chain';
  code: string;
  targetType: string;
  filter: SearchFilter;
}

/**
 * `_has:Observation:patient:code=1234-5`: some live `sourceType` resource whose reference
 * parameter `code` points to this resource matches `filter` (possibly another `_has`).
 */
export interface HasFilter {
  kind: 'has';
  sourceType: string;
  code: string;
  filter: SearchFilter;
  /**
   * Test each candidate with a correlated EXISTS (an index probe per row) instead of
   * collecting every matching source's reference: the storage layer sets it when it walks
   * a bounded window of candidates in order (see Repository.findWithKeys).
   */
  probe?: boolean;
}

export interface IdFilter {
  kind: 'id';
  not: boolean;
  ids: string[];
}

export type DatePrefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';

/** A date search value as the range it stands for: `2020-03` is [2020-03-01, 2020-04-01). */
export interface DateSearchValue {
  prefix: DatePrefix;
  /** Inclusive start, ISO 8601 instant in UTC. */
  start: string;
  /** Exclusive end, ISO 8601 instant in UTC. */
  end: string;
}

/** A date parameter; values ORed. */
export interface DateFilter {
  kind: 'date';
  code: string;
  values: DateSearchValue[];
}

/** A reference parameter: normalised references (`Patient/1`, absolute URLs), ORed. */
export interface ReferenceFilter {
  kind: 'reference';
  code: string;
  entries: string[];
}

/**
 * `:below` / `:above` on a reference parameter (search.html, hierarchies): references to
 * one of `roots` or to what lies below (above) them in their type's own hierarchy, the
 * reference parameter `via` of `targetType` that points to its own type (`partof`).
 */
export interface ReferenceTreeFilter {
  kind: 'reference-tree';
  code: string;
  direction: 'below' | 'above';
  targetType: string;
  via: string;
  /** `Type/id`, all of `targetType`. */
  roots: string[];
}

/** A string parameter: default starts-with, `:contains` (both case- and accent-insensitive) or `:exact`; values ORed. */
export interface StringFilter {
  kind: 'string';
  code: string;
  /** `equals` and `ends-with` (case- and accent-insensitive, per part) only come from `_filter` (eq, ew). */
  match: 'starts-with' | 'contains' | 'exact' | 'equals' | 'ends-with';
  values: string[];
}

export interface LastUpdatedFilter {
  kind: 'lastUpdated';
  values: DateSearchValue[];
}

/** `system` undefined: any system; '' : no system. `code` undefined: any code in the system. */
export interface TokenSearchValue {
  system?: string;
  code?: string;
}

export interface TokenFilter {
  kind: 'token';
  code: string;
  not: boolean;
  values: TokenSearchValue[];
}

/** A set of codes named rather than listed: a ValueSet (`:in`), or a code and what it subsumes or is subsumed by (`:below`, `:above`). */
export type TokenSet = { valueSet: string } | { system: string; code: string; relation: 'below' | 'above' };

/**
 * `:in` / `:not-in` / `:below` / `:above`: the codes of `sets` (ORed), found before the
 * query runs (storage/token-set-resolution.ts turns this into a TokenFilter).
 */
export interface TokenSetFilter {
  kind: 'token-set';
  code: string;
  not: boolean;
  sets: TokenSet[];
}

/** `:text`: case- and accent-insensitive starts-with on display / text. */
export interface TokenTextFilter {
  kind: 'token-text';
  code: string;
  texts: string[];
}

/** `identifier:of-type=typeSystem|typeCode|value`. */
export interface OfTypeFilter {
  kind: 'of-type';
  code: string;
  values: { typeSystem: string; typeCode: string; value: string }[];
}

export interface MissingFilter {
  kind: 'missing';
  code: string;
  missing: boolean;
}

export interface SortRule {
  /** `_lastUpdated`, `_id`, or a parameter code. */
  code: string;
  descending: boolean;
}

/** Whether a filter reaches other resources: a chain or `_has`, at any depth of AND / OR / NOT. */
export function reachesOtherResources(filter: SearchFilter): boolean {
  switch (filter.kind) {
    case 'chain':
    case 'has':
      return true;
    case 'any':
    case 'all':
      return filter.filters.some(reachesOtherResources);
    case 'not':
      return reachesOtherResources(filter.filter);
    default:
      return false;
  }
}
