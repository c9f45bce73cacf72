import type { Knex } from 'knex';
import { createKnex } from '../../server/storage/database';
import { runSql } from '../../server/storage/sql';

interface TarnPool {
  numUsed(): number;
  numFree(): number;
}

const adminUrl = (): string => process.env.TEST_ADMIN_DATABASE_URL as string;
const poolOf = (knex: Knex): TarnPool => (knex.client as unknown as { pool: TarnPool }).pool;
const backend = async (knex: Knex): Promise<number> =>
  (await runSql<{ pid: number }>(knex, 'held-test-pid', 'SELECT pg_backend_pid() AS pid', [])).rows[0].pid;
const within = <T>(ms: number, work: Promise<T>): Promise<T> =>
  Promise.race([work, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`not done within ${ms} ms`)), ms).unref())]);

test('statements in a row run on one kept connection, which goes back to the pool once unused', async () => {
  const knex = createKnex(adminUrl(), 4);
  try {
    const pids = new Set<number>();
    for (let i = 0; i < 20; i++) pids.add(await backend(knex));
    expect(pids.size).toBe(1);
    expect(poolOf(knex).numUsed()).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(poolOf(knex).numUsed()).toBe(0);
    expect(poolOf(knex).numFree()).toBe(1);
  } finally {
    await within(2000, knex.destroy());
  }
});

test('a kept connection is handed to a knex query waiting for a pool of one, and destroy() does not wait for long', async () => {
  const knex = createKnex(adminUrl(), 1);
  try {
    await backend(knex);
    // The only connection is kept by runSql; knex's own query must still get it at once.
    const started = Date.now();
    const row = await within(2000, knex.raw('SELECT 1 AS one'));
    expect(row.rows[0].one).toBe(1);
    expect(Date.now() - started).toBeLessThan(1000);
    // Concurrent statements on a pool of one queue up, none is lost.
    const pids = await within(5000, Promise.all(Array.from({ length: 10 }, () => backend(knex))));
    expect(new Set(pids).size).toBe(1);
  } finally {
    const started = Date.now();
    await within(2000, knex.destroy());
    expect(Date.now() - started).toBeLessThan(1000);
  }
});

test('a kept connection that the database ended is not used again: the next statement gets a live one', async () => {
  const knex = createKnex(adminUrl(), 2);
  const other = createKnex(adminUrl(), 1);
  try {
    const first = await backend(knex);
    await other.raw('SELECT pg_terminate_backend(?)', [first]);
    // The kept connection learns of its end asynchronously.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = await backend(knex);
    expect(second).not.toBe(first);
    expect(await backend(knex)).toBe(second);
  } finally {
    await within(2000, knex.destroy());
    await other.destroy();
  }
});

test('a statement that fails leaves its connection usable for the next one', async () => {
  const knex = createKnex(adminUrl(), 1);
  try {
    const pid = await backend(knex);
    await expect(runSql(knex, 'held-test-fail', 'SELECT 1 / 0', [])).rejects.toThrow(/division by zero/);
    expect(await backend(knex)).toBe(pid);
  } finally {
    await within(2000, knex.destroy());
  }
});
