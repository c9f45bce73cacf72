import type { Resource, SearchParameter } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import type { IndexedParam } from '../search/supported-parameters';

/**
 * The reindex job's reads and writes of resource tables. Reindexing adds a parameter's
 * column values to rows as they are: no new version, content untouched, so it is not a
 * write through `writeResource`, but it is storage's work and computes the values with
 * the same extraction the write path uses.
 */

export async function countLiveRows(tx: Knex.Transaction, resourceType: string): Promise<number> {
  const count = await tx.raw<{ rows: { n: number }[] }>(`SELECT count(*) AS n FROM "${resourceType}" WHERE NOT deleted`);
  return Number(count.rows[0].n);
}

/**
 * Fills the columns of `params` on the next `batchSize` live rows after id `after` (keyset
 * by id), only where the row is still the version read: a newer version was written by a
 * process that already knew the parameters, with the right values. Returns how many rows
 * were visited and the last id.
 */
export async function reindexRows(
  tx: Knex.Transaction,
  resourceType: string,
  params: readonly IndexedParam[],
  after: string,
  batchSize: number
): Promise<{ visited: number; lastId?: string }> {
  const rows = await tx.raw<{ rows: { id: string; version_id: number; content: Resource }[] }>(
    `SELECT id, version_id, content FROM "${resourceType}" WHERE NOT deleted AND id > ? ORDER BY id LIMIT ?`,
    [after, batchSize]
  );
  const columns = params.flatMap((param) => param.handler.columns(param));
  if (columns.length > 0 && rows.rows.length > 0) {
    const values: unknown[] = [];
    const tuples = rows.rows.map((row) => {
      const out: Record<string, unknown> = {};
      for (const param of params) param.handler.extract(param, param.expression.evaluate(row.content), out, row.content);
      values.push(row.id, row.version_id, ...columns.map((c) => out[c.name] ?? null));
      return `(?::text, ?::integer${columns.map((c) => `, ?::${c.sqlType}`).join('')})`;
    });
    const names = columns.map((c) => `"${c.name}"`);
    await tx.raw(
      `UPDATE "${resourceType}" AS t SET ${names.map((n) => `${n} = v.${n}`).join(', ')}
         FROM (VALUES ${tuples.join(', ')}) AS v(id, version_id, ${names.join(', ')})
        WHERE t.id = v.id AND t.version_id = v.version_id`,
      values as Knex.RawBinding[]
    );
  }
  return { visited: rows.rows.length, lastId: rows.rows.at(-1)?.id };
}

/** A SearchParameter's current row, as the job checks it is still the version it indexes. */
export async function readSearchParameterRow(
  tx: Knex.Transaction,
  id: string
): Promise<{ version_id: number; deleted: boolean; content: SearchParameter | null } | undefined> {
  const result = await tx.raw<{ rows: { version_id: number; deleted: boolean; content: SearchParameter | null }[] }>(
    'SELECT version_id, deleted, content FROM "SearchParameter" WHERE id = ?',
    [id]
  );
  return result.rows[0];
}
