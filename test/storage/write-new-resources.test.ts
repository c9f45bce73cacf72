import type { Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { createKnex } from '../../server/storage/database';
import { Repository } from '../../server/storage/repository';
import { writeStatements } from '../../server/storage/write-statements';
import { loadSynthea } from '../search/search-fixtures';
import { hl7ExampleFiles, readHl7Example } from '../support/hl7-examples';
import { startTestServer, type TestServer } from '../support/test-server';
import { resourceTypes } from '../../server/validation/structure-definitions';

let server: TestServer;
let knex: Knex;
let repo: Repository;
beforeAll(async () => {
  server = await startTestServer();
  knex = createKnex(server.databaseUrl, 4);
  repo = new Repository(knex, { searchDefaultCount: 20, searchMaxCount: 1000 });
}, 60000);
afterAll(async () => {
  await knex.destroy();
  await server.stop();
});

/** HL7's examples (every type, positions, composites, odd dates) and Synthea resources, minus SearchParameters and Appointments. */
function sampleResources(): Resource[] {
  const examples = hl7ExampleFiles().map((file) => readHl7Example(file) as Resource);
  // Every Synthea type, a few of each, keeps this fast.
  const perType = new Map<string, number>();
  const synthea = loadSynthea(resourceTypes, 1).filter((r) => {
    const seen = perType.get(r.resourceType) ?? 0;
    perType.set(r.resourceType, seen + 1);
    return seen < 25;
  });
  // Each is written twice below: a booked Appointment's copy would double-book its participants (write-appointment.ts).
  return [...examples, ...synthea].filter((r) => r.resourceType !== 'SearchParameter' && r.resourceType !== 'Appointment');
}

describe('many new resources written in one statement per type', () => {
  test('store the same content, index values and history as writing them one by one', async () => {
    const resources = sampleResources();
    const valid: { many: Resource & { id: string }; single: Resource & { id: string } }[] = [];
    for (let i = 0; i < resources.length; i++) {
      const single = { ...resources[i], id: `single-${i}` };
      try {
        await repo.update(single);
      } catch {
        // An example the validator rejects: writing it among many must be refused too.
        await expect(repo.createMany([{ ...resources[i], id: `many-${i}` }])).rejects.toThrow();
        continue;
      }
      valid.push({ single, many: { ...resources[i], id: `many-${i}` } });
    }
    expect(valid.length).toBeGreaterThan(900);

    const results = await repo.createMany(valid.map((v) => v.many));
    expect(results.every((r) => r.created && r.version.versionId === 1)).toBe(true);
    expect(results.map((r) => r.version.id)).toEqual(valid.map((v) => v.many.id));

    const byType = new Map<string, number[]>();
    valid.forEach((v, k) => byType.set(v.many.resourceType, [...(byType.get(v.many.resourceType) ?? []), k]));
    for (const [type, positions] of byType) {
      const { columns } = writeStatements(type);
      const ids = positions.flatMap((k) => [valid[k].single.id, valid[k].many.id]);
      const rows: Record<string, unknown>[] = await knex(type).select('*').whereIn('id', ids);
      const byId = new Map(rows.map((row) => [row.id as string, row]));
      for (const k of positions) {
        const single = byId.get(valid[k].single.id) as Record<string, unknown>;
        const many = byId.get(valid[k].many.id) as Record<string, unknown>;
        expect(many).toBeDefined();
        const strip = (content: any) => ({ ...content, id: undefined, meta: { ...content.meta, lastUpdated: undefined } });
        expect(strip(many.content)).toEqual(strip(single.content));
        for (const column of columns) {
          expect({ type, column, value: many[column] }).toEqual({ type, column, value: single[column] });
        }
      }
    }
    const history = await knex('resource_history').count<{ count: string }[]>('* as count').where('id', 'like', 'many-%').andWhere({ version_id: 1, method: 'POST' });
    expect(Number(history[0].count)).toBe(valid.length);
  }, 240000);

  test('an id that is already taken fails the whole call and writes nothing', async () => {
    await repo.update({ resourceType: 'Patient', id: 'taken-1' } as Resource & { id: string });
    await expect(
      repo.inTransaction((tx) =>
        tx.createMany([
          { resourceType: 'Patient', id: 'fresh-1' },
          { resourceType: 'Patient', id: 'taken-1' },
        ] as (Resource & { id: string })[])
      )
    ).rejects.toMatchObject({ cause: { status: 409 } });
    expect(await knex('Patient').where({ id: 'fresh-1' }).first()).toBeUndefined();
  });
});
