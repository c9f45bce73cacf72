import type { Knex } from 'knex';
import type { ResourceRow } from './resource-row';

/**
 * A version's history row holds its content only once the version is superseded: while
 * it is current, the type's own row holds it, and the history row's content is NULL (as
 * a deletion's is). Most resources are written once and never changed (all of a Synthea
 * ingest, every AuditEvent), and their content went to disk twice. An update or delete
 * moves the content of the version it supersedes into that version's history row, in its
 * own statement (write-statements.ts). Rows written before this scheme keep their content.
 *
 * Readers of resource_history (history, vread) pass their rows through
 * `withCurrentContent`, which takes the missing contents from the types' tables.
 */

/** Rows of resource_history that still lack their content (rows are completed in place). */
export async function withCurrentContent<R extends ResourceRow>(knex: Knex, rows: R[]): Promise<R[]> {
  // A version read as current may be superseded before its content is fetched; the update
  // that superseded it has then written the content into its history row: look there.
  for (let attempt = 0; attempt < 3; attempt++) {
    const missing = rows.filter((r) => r.content == null && !r.deleted);
    if (missing.length === 0) return rows;
    const byType = new Map<string, R[]>();
    for (const row of missing) {
      const type = row.resource_type as string;
      byType.set(type, [...(byType.get(type) ?? []), row]);
    }
    for (const [type, typed] of byType) {
      const source = attempt === 0 ? knex(type).select('id', 'version_id', 'content') : knex('resource_history').select('id', 'version_id', 'content').where('resource_type', type);
      const found: { id: string; version_id: number; content: unknown }[] = await source.whereIn(
        'id',
        typed.map((r) => r.id)
      );
      for (const row of typed) {
        const match = found.find((f) => f.id === row.id && f.version_id === row.version_id);
        if (match?.content != null) row.content = match.content as R['content'];
      }
    }
  }
  const lost = rows.find((r) => r.content == null && !r.deleted);
  throw new Error(`no content found for ${lost?.resource_type}/${lost?.id}/_history/${lost?.version_id}`);
}
