import { paramColumn, qualifiedColumn, quoteIdentifier } from './column-names';
import type { ColumnRef, SqlCondition } from './parameter-type';
import type { ChainFilter, HasFilter, SearchFilter } from './search-request';

/** build-search-sql's own condition builder, passed in so that chains can nest any filter. */
export type FilterConditionBuilder = (resourceType: string, filter: SearchFilter, tableAlias?: string) => SqlCondition;

/** A fresh alias per nesting level, so an inner table never shadows an outer one of the same type. */
function nestedAlias(outerAlias: string | undefined, kind: string): string {
  return `${outerAlias ?? 'r'}_${kind}`;
}

/**
 * `subject:Patient.name=peter`: the matching targets' `Type/id` strings, built once by
 * an uncorrelated subquery (an InitPlan), tested with `&&` against the reference column,
 * so the outer table is read through its GIN index; the target table through the inner
 * condition's own index. EXPLAIN on Synthea data: see docs/architecture.md (Search).
 */
export function chainCondition(filter: ChainFilter, column: ColumnRef, tableAlias: string | undefined, build: FilterConditionBuilder): SqlCondition {
  const alias = nestedAlias(tableAlias, 'chain');
  const inner = build(filter.targetType, filter.filter, alias);
  return {
    sql:
      `${column(paramColumn(filter.code))} && ARRAY(SELECT ? || ${qualifiedColumn('id', alias)} ` +
      `FROM ${quoteIdentifier(filter.targetType)} AS ${quoteIdentifier(alias)} ` +
      `WHERE ${qualifiedColumn('deleted', alias)} = false AND ${inner.sql})`,
    bindings: [`${filter.targetType}/`, ...inner.bindings],
  };
}

/**
 * `_has:Observation:patient:code=x` on Patient: the ids that matching Observations point
 * to (their `Patient/…` references, cut to the id), so PostgreSQL can semi-join on the
 * primary key after finding the Observations through their own indexes.
 */
export function hasCondition(
  resourceType: string,
  filter: HasFilter,
  column: ColumnRef,
  tableAlias: string | undefined,
  build: FilterConditionBuilder
): SqlCondition {
  const alias = nestedAlias(tableAlias, 'has');
  const ref = quoteIdentifier(`${alias}_ref`);
  const inner = build(filter.sourceType, filter.filter, alias);
  const prefix = `${resourceType}/`;
  if (filter.probe) {
    // One GIN probe of the reference column per candidate, the other criteria checked on
    // the rows it finds, stopping at the first match. `OFFSET 0` keeps PostgreSQL from
    // pushing them into the scan: it would AND each probe with the criteria's own index
    // (2 ms a probe for a common code at 10×, instead of 0.35 ms).
    const probe = quoteIdentifier(`${alias}_probe`);
    return {
      sql:
        `EXISTS (SELECT 1 FROM (SELECT * FROM ${quoteIdentifier(filter.sourceType)} AS ${probe} ` +
        `WHERE ${qualifiedColumn(paramColumn(filter.code), `${alias}_probe`)} @> ARRAY[? || ${column('id')}] OFFSET 0) AS ${quoteIdentifier(alias)} ` +
        `WHERE ${qualifiedColumn('deleted', alias)} = false AND ${inner.sql})`,
      bindings: [prefix, ...inner.bindings],
    };
  }
  return {
    sql:
      `${column('id')} IN (SELECT substr(${ref}, ${prefix.length + 1}) ` +
      `FROM ${quoteIdentifier(filter.sourceType)} AS ${quoteIdentifier(alias)}, ` +
      `unnest(${qualifiedColumn(paramColumn(filter.code), alias)}) AS ${ref} ` +
      `WHERE ${qualifiedColumn('deleted', alias)} = false AND starts_with(${ref}, ?) AND ${inner.sql})`,
    bindings: [prefix, ...inner.bindings],
  };
}
