import type { Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { INLINE_UP_TO, supportsLz4 } from '../../server/storage/toast-settings';
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

async function create(resource: Resource): Promise<Resource & { id: string }> {
  const res = await fetch(`${server.base}/${resource.resourceType}`, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ ...resource, id: undefined }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as Resource & { id: string };
}

async function readBackUnchanged(created: Resource & { id: string }): Promise<void> {
  const read = (await (await fetch(`${server.base}/${created.resourceType}/${created.id}`)).json()) as Resource;
  const { meta: _readMeta, ...readBack } = read;
  const { meta: _createdMeta, ...sent } = created;
  expect(readBack).toEqual(sent);
}

/**
 * pg_column_compression of the stored content in the type's table and in history (null:
 * stored uncompressed). History holds a version's content once it is superseded
 * (storage/history-content.ts): the resource is first updated (its language set), and
 * version 1's history row is compared with the current row.
 */
async function compressionOf(created: Resource & { id: string }): Promise<{ t: string | null; h: string | null }> {
  const res = await fetch(`${server.base}/${created.resourceType}/${created.id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    // A change, so that the update makes a new version (an identical one is not).
    body: JSON.stringify({ ...created, language: 'en' }),
  });
  expect(res.status).toBe(200);
  const stored = await knex.raw(
    `SELECT pg_column_compression(t.content) AS t, pg_column_compression(h.content) AS h FROM "${created.resourceType}" t
     JOIN resource_history h ON h.resource_type = ? AND h.id = t.id AND h.version_id = 1 WHERE t.id = ?`,
    [created.resourceType, created.id]
  );
  return stored.rows[0];
}

describe('stored content compression', () => {
  test('every variable-length column of the resource tables and of history (search columns too) compresses with lz4 where PostgreSQL has it (its default pglz otherwise)', async () => {
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
    expect(columns.filter((c) => c.column === 'content').length).toBe(resourceTypes.length + 1);
    // '' is the server's default (pglz).
    const wrong = columns.filter((c) => (lz4 ? c.method !== 'l' : c.method !== ''));
    expect(wrong).toEqual([]);
  });

  test('a resource table keeps a row that fits a page whole and uncompressed, while history compresses it: a Synthea Patient or Observation is not moved to TOAST, and reads back unchanged', async () => {
    const options: { table: string; options: string[] | null }[] = (
      await knex.raw(`SELECT relname AS table, reloptions AS options FROM pg_class WHERE relkind = 'r' AND relnamespace = current_schema()::regnamespace AND relname = ANY(?)`, [
        [...resourceTypes, 'resource_history'],
      ])
    ).rows;
    const target = `toast_tuple_target=${INLINE_UP_TO}`;
    expect(options.filter((o) => o.table !== 'resource_history' && !(o.options ?? []).includes(target))).toEqual([]);
    expect(options.find((o) => o.table === 'resource_history')?.options ?? []).not.toContain(target);

    // With PostgreSQL's 2 kB default, these rows (content plus search columns) had their content moved out of line.
    const patients = loadSynthea(['Patient'], 3) as Resource[];
    const observations = (loadSynthea(['Observation'], 1) as Resource[]).slice(0, 20);
    const created: (Resource & { id: string })[] = [];
    for (const resource of [...patients, ...observations]) created.push(await create(resource));
    const toast = await knex.raw(
      `SELECT relname AS table, pg_relation_size(reltoastrelid) AS bytes FROM pg_class WHERE relname IN ('Patient', 'Observation') ORDER BY relname`
    );
    expect(toast.rows).toEqual([
      { table: 'Observation', bytes: 0 },
      { table: 'Patient', bytes: 0 },
    ]);
    const patient = created[0];
    expect(JSON.stringify(patient).length).toBeGreaterThan(2048);
    const lz4 = await supportsLz4(knex);
    await readBackUnchanged(patient);
    expect(await compressionOf(patient)).toEqual({ t: null, h: lz4 ? 'lz4' : 'pglz' });
  });

  test('a content larger than a page is compressed with lz4 where PostgreSQL has it (pglz otherwise), in the table and in history, and reads back unchanged', async () => {
    const [eob] = loadSynthea(['ExplanationOfBenefit'], 1) as Resource[];
    // A long narrative makes it larger than a page.
    const div = `<div xmlns="http://www.w3.org/1999/xhtml">${'<p>Claim line reviewed and adjudicated.</p>'.repeat(400)}</div>`;
    const created = await create({ ...eob, text: { status: 'generated', div } } as Resource);
    expect(JSON.stringify(created).length).toBeGreaterThan(INLINE_UP_TO);
    const expected = (await supportsLz4(knex)) ? 'lz4' : 'pglz';
    await readBackUnchanged(created);
    expect(await compressionOf(created)).toEqual({ t: expected, h: expected });
  });
});
