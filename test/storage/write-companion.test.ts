import type { AuditEvent, Patient, Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { newId } from '../../server/core/ids';
import { createKnex } from '../../server/storage/database';
import { Repository } from '../../server/storage/repository';
import type { WriteCompanion, WriteResult } from '../../server/storage/write-resource';
import { startTestServer, type TestServer } from '../support/test-server';

let server: TestServer;
let knex: Knex;
const options = { searchDefaultCount: 20, searchMaxCount: 1000 };
beforeAll(async () => {
  server = await startTestServer();
  knex = createKnex(server.databaseUrl, 4);
}, 60000);
afterAll(async () => {
  await knex.destroy();
  await server.stop();
});

/** A companion that stores one AuditEvent naming the written version, and remembers the ids it offered. */
function auditCompanion(): WriteCompanion & { offered: string[] } {
  const offered: string[] = [];
  return {
    resourceType: 'AuditEvent',
    written: 0,
    offered,
    rowsFor(result: WriteResult): (Resource & { id: string })[] {
      const id = newId();
      offered.push(id);
      const event: AuditEvent & { id: string } = {
        resourceType: 'AuditEvent',
        id,
        type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
        recorded: new Date().toISOString(),
        agent: [{ who: { display: 'test' }, requestor: true }],
        source: { observer: { display: 'test' } },
        entity: [{ what: { reference: `${result.version.resourceType}/${result.version.id}/_history/${result.version.versionId}` } }],
      };
      return [event];
    },
  };
}

async function storedEvents(ids: string[]): Promise<{ id: string; entity: string; history: number; queued: number }[]> {
  if (ids.length === 0) return [];
  const rows = await knex.raw(
    `SELECT a.id, a.content #>> '{entity,0,what,reference}' AS entity,
            (SELECT count(*)::int FROM resource_history h WHERE h.resource_type = 'AuditEvent' AND h.id = a.id) AS history,
            (SELECT count(*)::int FROM audit_unsealed q WHERE q.audit_event_id = a.id)
              + (SELECT count(*)::int FROM audit_chain c WHERE c.audit_event_id = a.id) AS queued
       FROM "AuditEvent" a WHERE a.id = ANY(?) ORDER BY a.id`,
    [ids]
  );
  return rows.rows;
}

const patient = (id?: string): Patient => ({ resourceType: 'Patient', ...(id ? { id } : {}), name: [{ family: 'Companion' }] });

describe('resources stored by the same statement as a write (WriteCompanion)', () => {
  test('create, update, patch and delete each store their companion with its history row and hash-chain queue row', async () => {
    const companion = auditCompanion();
    const repo = new Repository(knex, options, companion);
    const created = await repo.create(patient());
    const id = created.version.id;
    await repo.update({ ...patient(id), id, gender: 'female' });
    await repo.patch('Patient', id, [{ op: 'add', path: '/birthDate', value: '1970-01-01' }]);
    await repo.delete('Patient', id);
    expect(companion.written).toBe(4);
    const events = await storedEvents(companion.offered);
    expect(events.map((e) => e.entity).sort()).toEqual([1, 2, 3, 4].map((v) => `Patient/${id}/_history/${v}`));
    expect(events.every((e) => e.history === 1 && e.queued === 1)).toBe(true);
  });

  test('a write that does not happen stores no companion: an id already taken, a stale If-Match, a delete of nothing', async () => {
    const plain = new Repository(knex, options);
    const id = (await plain.create(patient())).version.id;
    const companion = auditCompanion();
    const repo = new Repository(knex, options, companion);
    await expect(repo.create(patient(), undefined, id)).rejects.toMatchObject({ status: 409 });
    await expect(repo.update({ ...patient(id), id }, 7)).rejects.toMatchObject({ status: 412 });
    await repo.delete('Patient', newId());
    expect(companion.written).toBe(0);
    // The 409 built its companion and sent it with the insert, which wrote nothing: neither did the companion.
    expect(companion.offered.length).toBeGreaterThan(0);
    expect(await storedEvents(companion.offered)).toEqual([]);
  });

  test('a companion whose id is taken fails the write too: nothing of the statement is stored', async () => {
    const plain = new Repository(knex, options);
    const taken = auditCompanion();
    await new Repository(knex, options, taken).create(patient());
    const clash: WriteCompanion = { ...taken, written: 0, rowsFor: (result) => taken.rowsFor(result).map((row) => ({ ...row, id: taken.offered[0] })) };
    const id = newId();
    await expect(new Repository(knex, options, clash).create(patient(), undefined, id)).rejects.toThrow();
    await expect(plain.read('Patient', id)).rejects.toMatchObject({ status: 404 });
    expect(clash.written).toBe(0);
  });

  test('inside a transaction that rolls back, the companion rolls back with the write and is no longer counted', async () => {
    const companion = auditCompanion();
    const repo = new Repository(knex, options, companion);
    let id = '';
    await expect(
      repo.inTransaction(async (tx) => {
        id = (await tx.create(patient())).version.id;
        expect(companion.written).toBe(1);
        throw new Error('after the write');
      })
    ).rejects.toThrow('after the write');
    expect(companion.written).toBe(0);
    expect(await storedEvents(companion.offered)).toEqual([]);
    await expect(new Repository(knex, options).read('Patient', id)).rejects.toMatchObject({ status: 404 });
  });

  test('a conditional update carries its companion inside its transaction', async () => {
    const companion = auditCompanion();
    const repo = new Repository(knex, options, companion);
    const family = `Cond${newId().slice(0, 8)}`;
    const result = await repo.conditionalUpdate({ resourceType: 'Patient', name: [{ family }] }, `family=${family}`);
    expect(result.created).toBe(true);
    expect(companion.written).toBe(1);
    expect((await storedEvents(companion.offered)).map((e) => e.entity)).toEqual([`Patient/${result.version.id}/_history/1`]);
  });
});
