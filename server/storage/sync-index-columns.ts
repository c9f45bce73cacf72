import type { Knex } from 'knex';
import { indexColumns, requiredExtensions } from '../search/index-columns';
import { resourceTypes } from '../validation/structure-definitions';

/**
 * Brings every resource table's search columns and indexes in line with the search
 * module's definitions. Idempotent and cheap when nothing changed (one catalogue query),
 * so it runs at every start after the migrations.
 */
export async function syncIndexColumns(knex: Knex): Promise<number> {
  for (const extension of requiredExtensions()) {
    await knex.raw(`CREATE EXTENSION IF NOT EXISTS ${extension}`);
  }
  const existing = await knex.raw<{ rows: { table_name: string; column_name: string }[] }>(
    `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()`
  );
  const have = new Set(existing.rows.map((r) => `${r.table_name}.${r.column_name}`));
  const indexes = await knex.raw<{ rows: { indexname: string }[] }>(
    `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()`
  );
  const haveIndex = new Set(indexes.rows.map((r) => r.indexname));
  let changes = 0;
  for (const type of resourceTypes) {
    const statements: string[] = [];
    for (const column of indexColumns(type)) {
      if (!have.has(`${type}.${column.name}`)) {
        statements.push(`ALTER TABLE "${type}" ADD COLUMN IF NOT EXISTS "${column.name}" ${column.sqlType}`);
      }
      const indexName = `${type}_${column.name}_idx`.slice(0, 63);
      if (column.indexMethod !== 'none' && !haveIndex.has(indexName)) {
        const target = column.indexExpression ?? `"${column.name}"`;
        statements.push(`CREATE INDEX IF NOT EXISTS "${indexName}" ON "${type}" USING ${column.indexMethod} (${target})`);
      }
    }
    if (statements.length > 0) {
      // One round trip and one transaction per table: a fresh database has ~2,900 of these.
      await knex.transaction((tx) => tx.raw(statements.join(';\n')));
      changes += statements.length;
    }
  }
  return changes;
}
