import type { Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { supportsLz4 } from '../../server/storage/column-compression';
import { createKnex } from '../../server/storage/database';
import { loadSynthea } from '../search/search-fixtures';
import { startTestServer, type TestServer } from '../support/test-server';
import { resourceTypes } from '../../server/validation/structure-definitions';

let server: TestServer;
let knex: Knex;
beforeAll(async () => {
  server = await startTestServer();
  knex = createKnex(server.databaseUrl, 2);
}, 60000);
afterAll(async () => {
  await knex.destroy();
  await server.stop();
});

describe('stored content compression', () => {
  test('large contents are written with lz4 where PostgreSQL has it (pglz otherwise), in the table and in history, and read back unchanged', async () => {
    const lz4 = await supportsLz4(knex);
    const expected = lz4 ? 'lz4' : 'pglz';
    const columns: { table: string; method: string }[] = (
      await knex.raw(`SELECT c.relname AS table, a.attcompression AS method FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE a.attname = 'content' AND c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace`)
    ).rows;
    const tables = [...resourceTypes, 'resource_history'];
    const byTable = new Map(columns.map((c) => [c.table, c.method]));
    // '' is the server's default (pglz).
    for (const table of tables) expect([table, byTable.get(table) || 'default']).toEqual([table, lz4 ? 'l' : 'default']);

    // Synthea's ExplanationOfBenefits are several kB: PostgreSQL compresses each.
    const [eob] = loadSynthea(['ExplanationOfBenefit'], 1) as Resource[];
    const res = await fetch(`${server.base}/ExplanationOfBenefit`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify({ ...eob, id: undefined }) });
    expect(res.status).toBe(201);
    const created = (await res.json()) as Resource & { id: string };
    const stored = await knex.raw(
      `SELECT pg_column_compression(t.content) AS t, pg_column_compression(h.content) AS h FROM "ExplanationOfBenefit" t
       JOIN resource_history h ON h.resource_type = 'ExplanationOfBenefit' AND h.id = t.id WHERE t.id = ?`,
      [created.id]
    );
    expect(stored.rows[0]).toEqual({ t: expected, h: expected });
    const read = (await (await fetch(`${server.base}/ExplanationOfBenefit/${created.id}`)).json()) as Resource;
    const { meta: _readMeta, ...readBack } = read;
    const { meta: _createdMeta, ...sent } = created;
    expect(readBack).toEqual(sent);
  });

  test('every variable-length column of the resource tables (search columns too) compresses with lz4 where PostgreSQL has it, so a long Observation row does not pay pglz', async () => {
    const lz4 = await supportsLz4(knex);
    const columns: { table: string; column: string; method: string }[] = (
      await knex.raw(
        `SELECT c.relname AS table, a.attname AS column, a.attcompression AS method FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(?)
            AND a.attnum > 0 AND NOT a.attisdropped AND a.attlen = -1 AND a.attstorage IN ('x', 'm')`,
        [[...resourceTypes, 'resource_history']]
      )
    ).rows;
    expect(columns.filter((c) => c.table === 'Observation').length).toBeGreaterThan(40);
    const wrong = columns.filter((c) => (lz4 ? c.method !== 'l' : c.method !== ''));
    expect(wrong).toEqual([]);

    // A Synthea Observation's row passes 2 kB with its token arrays: PostgreSQL compresses some of those too.
    const observations = loadSynthea(['Observation'], 1) as Resource[];
    const ids: string[] = [];
    for (const observation of observations.slice(0, 20)) {
      const res = await fetch(`${server.base}/Observation`, { method: 'POST', headers: { 'content-type': 'application/fhir+json', prefer: 'return=minimal' }, body: JSON.stringify({ ...observation, id: undefined }) });
      expect(res.status).toBe(201);
      ids.push(res.headers.get('location')!.split('/')[5]);
    }
    const names = columns.filter((c) => c.table === 'Observation' && c.column.startsWith('__')).map((c) => c.column);
    const methods: { method: string }[] = (
      await knex.raw(
        `SELECT m.method FROM "Observation" t, LATERAL (VALUES ${names.map((n) => `(pg_column_compression(t."${n}"))`).join(', ')}) AS m(method)
          WHERE t.id = ANY(?) AND m.method IS NOT NULL`,
        [ids]
      )
    ).rows;
    expect(methods.length).toBeGreaterThan(0);
    expect(new Set(methods.map((m) => m.method))).toEqual(new Set([lz4 ? 'lz4' : 'pglz']));
  });
});
