import { randomBytes } from 'node:crypto';
import { createKnex } from '../../server/storage/database';
import { prepareSchema } from '../../server/storage/prepare-schema';
import { resourceTypes } from '../../server/validation/structure-definitions';
import { withDatabase } from '../support/database-url';
import { copyTemplateDatabase } from '../support/template-database';

test('three processes preparing one fresh database at once take turns and leave one complete schema', async () => {
  const adminUrl = process.env.TEST_ADMIN_DATABASE_URL as string;
  const database = `fhir_test_${randomBytes(6).toString('hex')}`;
  const admin = createKnex(adminUrl, 1);
  await admin.raw(`CREATE DATABASE "${database}"`);
  const servers = [0, 1, 2].map(() => createKnex(withDatabase(adminUrl, database), 2));
  try {
    const added = await Promise.all(servers.map((knex) => prepareSchema(knex)));
    // The first one to get the lock did all the work; the others found nothing to add.
    expect(added.filter((n) => n > 0)).toHaveLength(1);
    const tables = await servers[0].raw(
      `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name = ANY(?)`,
      [resourceTypes as string[]]
    );
    expect(tables.rows[0].n).toBe(resourceTypes.length);
    expect(await prepareSchema(servers[0])).toBe(0);
  } finally {
    await Promise.all(servers.map((knex) => knex.destroy()));
    await admin.raw(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.destroy();
  }
});

test('GIN and GiST search indexes leave out NULLs, and an index made before that is replaced at start', async () => {
  const database = await copyTemplateDatabase();
  const knex = createKnex(database.url, 2);
  const definition = async (name: string): Promise<string> =>
    (await knex.raw(`SELECT indexdef FROM pg_indexes WHERE indexname = ?`, [name])).rows[0]?.indexdef;
  try {
    expect(await definition('Observation___code_idx')).toMatch(/USING gin \(__code\) WHERE \(__code IS NOT NULL\)$/);
    expect(await definition('Location___near_idx')).toMatch(/USING gist \(__near\) WHERE \(__near IS NOT NULL\)$/);
    expect(await definition('Observation___date_lo_idx')).not.toMatch(/WHERE/);

    await knex.raw('DROP INDEX "Observation___code_idx"');
    await knex.raw('CREATE INDEX "Observation___code_idx" ON "Observation" USING gin (__code)');
    expect(await prepareSchema(knex)).toBe(2);
    expect(await definition('Observation___code_idx')).toMatch(/WHERE \(__code IS NOT NULL\)$/);
  } finally {
    await knex.destroy();
    await database.drop();
  }
});
