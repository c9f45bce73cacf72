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

/** Fills in place the content the rows of resource_history lack, and returns them. */
export async function withCurrentContent<R extends ResourceRow>(knex: Knex, rows: R[]): Promise<R[]> {
  await fillFrom(rows, (type) => knex(type));
  // A version read as current may have been superseded since: the update that did it wrote
  // the content into the version's history row, in the same statement.
  await fillFrom(rows, (type) => knex('resource_history').where('resource_type', type));
  const lost = rows.find(lacksContent);
  if (lost) throw new Error(`no content found for ${lost.resource_type}/${lost.id}/_history/${lost.version_id}`);
  return rows;
}

function lacksContent(row: ResourceRow): boolean {
  return row.content == null && !row.deleted;
}

/** One query per type: the rows still lacking content take it from `source(type)`'s row of the same id and version. */
async function fillFrom(rows: ResourceRow[], source: (type: string) => Knex.QueryBuilder): Promise<void> {
  const byType = new Map<string, Map<string, ResourceRow>>();
  for (const row of rows.filter(lacksContent)) {
    const type = row.resource_type as string;
    if (!byType.has(type)) byType.set(type, new Map());
    byType.get(type)?.set(`${row.id}/${row.version_id}`, row);
  }
  for (const [type, wanted] of byType) {
    const ids = [...new Set([...wanted.values()].map((r) => r.id))];
    const found: ResourceRow[] = await source(type).select('id', 'version_id', 'content').whereIn('id', ids);
    for (const f of found) {
      const row = wanted.get(`${f.id}/${f.version_id}`);
      if (row && f.content != null) row.content = f.content;
    }
  }
}
