import type pg from 'pg';
import { INLINE_UP_TO, LZ4_SUPPORTED_SQL } from '../../server/storage/toast-settings';

/**
 * The raw baselines' bare `(id, content jsonb)` table. Its content is stored as the
 * server stores its own (storage/toast-settings.ts: lz4 where the build has it, rows up
 * to a page left whole), so that a ratio compares the work done and not a storage
 * setting: on this machine a COPY of the Synthea set ran at ~32,000 resources/s with
 * PostgreSQL's default pglz and ~45,000/s with lz4.
 */
export async function createBareTable(db: pg.ClientBase | pg.Pool, table: string): Promise<{ compression: 'lz4' | 'pglz' }> {
  const { rows } = await db.query<{ lz4: boolean }>(LZ4_SUPPORTED_SQL);
  const lz4 = rows[0]?.lz4 === true;
  await db.query(
    `CREATE TABLE IF NOT EXISTS ${table} (id text PRIMARY KEY, content jsonb${lz4 ? ' COMPRESSION lz4' : ''} NOT NULL) WITH (toast_tuple_target = ${INLINE_UP_TO})`
  );
  return { compression: lz4 ? 'lz4' : 'pglz' };
}
