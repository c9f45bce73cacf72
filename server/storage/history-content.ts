import type { Knex } from 'knex';

/**
 * Types whose one version is their current row for good: an AuditEvent is created once
 * and never updated, patched or deleted (PostgreSQL's triggers refuse it, docs/audit.md).
 * Their history row is written without the content, which the current row already holds:
 * a read's AuditEvent is the busiest write of the server, and its content went to disk
 * twice (and through TOAST's compression twice once over 2 kB, as a search's event with
 * twenty patients is). History and vread take the content from the current row.
 */
export const CONTENT_IN_CURRENT_ROW: ReadonlySet<string> = new Set(['AuditEvent']);

/**
 * The content of a resource_history row (table or alias `h`) as an SQL expression: its
 * own, or for a CONTENT_IN_CURRENT_ROW type that row's, the same version. A deletion has none.
 */
export function historyContentSql(h: string): string {
  const fromCurrent = [...CONTENT_IN_CURRENT_ROW]
    .map((type) => `WHEN '${type}' THEN (SELECT c.content FROM "${type}" c WHERE c.id = ${h}.id AND c.version_id = ${h}.version_id)`)
    .join(' ');
  return `COALESCE(${h}.content, CASE WHEN ${h}.deleted THEN NULL ELSE CASE ${h}.resource_type ${fromCurrent} END END)`;
}

/** historyContentSql as a knex select column named `content`. */
export function historyContentColumn(knex: Knex, h: string): Knex.Raw {
  return knex.raw(`${historyContentSql(h)} AS content`);
}
