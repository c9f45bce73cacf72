import type { Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { supportsLz4 } from '../../server/storage/migrations/011-lz4-content';
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
});
