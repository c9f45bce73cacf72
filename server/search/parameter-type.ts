import type { Resource } from '@medplum/fhirtypes';
import type { CompiledExpression, TypedNode } from './compile-path-expression';
import type { IndexColumn } from './index-columns';
import type { SearchParamDef } from './search-parameter-definitions';
import type { SearchFilter } from './search-request';

/** A WHERE fragment with `?` placeholders, for knex `whereRaw`. */
export interface SqlCondition {
  sql: string;
  bindings: unknown[];
}

/** Resolves a column name to its (alias-qualified, quoted) SQL reference. */
export type ColumnRef = (name: string) => string;

/** A parameter as the type handlers see it: its definition and its compiled expression for one resource type. */
export interface ParamContext {
  readonly def: SearchParamDef;
  readonly expression: CompiledExpression;
}

/**
 * Everything one search parameter type (token, date, ...) knows: its index columns,
 * how values are extracted into them, how query values parse, and the SQL that matches.
 * A parameter type is listed in the CapabilityStatement only once it has all of this.
 */
export interface ParameterType {
  /** What the CapabilityStatement says of the parameter, when the definition's description does not say how it is read here. */
  readonly documentation?: string;
  /** False when this type cannot serve this particular parameter (it is then not indexed or listed). */
  supports?(param: ParamContext): boolean;
  columns(param: ParamContext): IndexColumn[];
  /** `resource` is the root the expression was evaluated on (composites and `url|version` read it). */
  extract(param: ParamContext, nodes: readonly TypedNode[], out: Record<string, unknown>, resource: Resource): void;
  /**
   * `values` are the comma-separated OR values, still escaped. Throws 400 when a value is
   * malformed or the modifier is not implemented (`:missing` is handled before this).
   */
  parse(param: ParamContext, modifier: string | undefined, values: string[]): SearchFilter;
  condition(param: ParamContext, filter: SearchFilter, column: ColumnRef): SqlCondition;
  missing(param: ParamContext, missing: boolean, column: ColumnRef): SqlCondition;
  /** An ORDER BY term; absent when the type cannot be sorted on (yet). */
  sort?(param: ParamContext, descending: boolean, column: ColumnRef): string;
}

export function placeholders(count: number): string {
  return new Array(count).fill('?').join(', ');
}

/**
 * ORDER BY over a `text[]` column's entries that `where` keeps (`e` is one entry):
 * ascending by the smallest, descending by the largest, as number and date sorts do, so
 * a resource with several values sorts by the one nearest the front either way.
 */
export function arrayEntrySort(column: string, descending: boolean, where: string): string {
  return descending
    ? `(SELECT max(e) FROM unnest(${column}) e WHERE ${where}) DESC NULLS LAST`
    : `(SELECT min(e) FROM unnest(${column}) e WHERE ${where}) ASC NULLS LAST`;
}

/** `:missing=true|false` on a parameter's one column: NULL when the resource has no value. */
export function columnMissing(column: string, missing: boolean): SqlCondition {
  return { sql: `${column} IS ${missing ? '' : 'NOT '}NULL`, bindings: [] };
}

/** Any of `entries` in a `text[]` column: `&&`, served by the column's GIN index. */
export function arrayOverlap(column: string, entries: readonly string[]): SqlCondition {
  return { sql: `${column} && ARRAY[${placeholders(entries.length)}]::text[]`, bindings: [...entries] };
}
