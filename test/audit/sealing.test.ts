import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AuditEvent } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { chainHash, GENESIS, verifyAuditChain } from '../../server/audit/audit-chain';
import { AuditRecorder } from '../../server/audit/audit-recorder';
import { AuditSealer, queueLook, TAKE_BATCH_SQL } from '../../server/audit/audit-sealer';
import { ChainAnchors, databaseInstance, readAnchors } from '../../server/audit/chain-anchors';
import { newId } from '../../server/core/ids';
import { Repository } from '../../server/storage/repository';
import { emptyAuditTrail, readAuditEvent } from '../support/audit-trail';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * AuditEvents are stored at once and queued for the chain by the statement that stores
 * them; sealers link the queue in the background (docs/audit.md). The server here runs
 * with AUDIT=false so that the test alone decides what is written and when it is linked.
 */
let server: TestServer;
let knex: Knex;
const options = { searchDefaultCount: 20, searchMaxCount: 1000 };

beforeAll(async () => {
  server = await startTestServer({ AUDIT: 'false' });
  knex = server.server.knex;
});

afterAll(async () => {
  await server?.stop();
});

// Each test starts from an empty trail.
beforeEach(() => emptyAuditTrail(knex));

function auditEvent(outcome = '0'): AuditEvent & { id: string } {
  return { ...readAuditEvent(outcome), id: newId() };
}

async function store(count: number): Promise<string[]> {
  const events = Array.from({ length: count }, () => auditEvent());
  await new Repository(knex, options).createMany(events);
  return events.map((e) => e.id);
}

async function linkedIds(): Promise<string[]> {
  return (await knex('audit_chain').select('audit_event_id')).map((r: { audit_event_id: string }) => r.audit_event_id);
}

test('an AuditEvent written through the repository is queued with the digest of its stored content, and verify counts it as pending, not inserted', async () => {
  const [id] = await store(1);
  const queued = await knex('audit_unsealed').where({ audit_event_id: id }).first();
  const { digest } = (await knex.raw(`SELECT encode(sha256(convert_to(content::text, 'UTF8')), 'hex') AS digest FROM "AuditEvent" WHERE id = ?`, [id])).rows[0];
  expect(queued.digest).toBe(digest);
  const report = await verifyAuditChain(knex);
  expect(report.problems).toEqual([]);
  expect(report.pending).toBe(1);
});

test('a sealer links the queue in order into its stream, and verify then finds the trail intact with nothing pending', async () => {
  const ids = await store(25);
  const sealer = new AuditSealer(knex, 'stream-a', { batch: 10 });
  await sealer.sealed();
  const rows = await knex('audit_chain').where({ stream: 'stream-a' }).orderBy('seq');
  expect(rows.map((r: { seq: string }) => Number(r.seq))).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
  expect(rows.map((r: { audit_event_id: string }) => r.audit_event_id)).toEqual(ids);
  expect(rows[0].prev_hash).toBe(GENESIS);
  const report = await verifyAuditChain(knex);
  expect(report).toMatchObject({ problems: [], pending: 0, checked: 25, streams: 1 });
});

test('a sealer vacuums the queue every so many linked rows, so that its dead rows do not pile up where autovacuum is off', async () => {
  const vacuums = async (): Promise<number> =>
    Number((await knex.raw(`SELECT vacuum_count + autovacuum_count AS n FROM pg_stat_user_tables WHERE relname = 'audit_unsealed'`)).rows[0].n);
  const before = await vacuums();
  await store(30);
  const errors: unknown[] = [];
  const sealer = new AuditSealer(knex, 'stream-v', { batch: 10, onError: (err) => errors.push(err), vacuumEvery: 25 });
  await sealer.sealed();
  expect(errors).toEqual([]);
  // The statistics are flushed by each backend when idle: wait for the one that vacuumed.
  for (let i = 0; i < 50 && (await vacuums()) === before; i++) await new Promise((r) => setTimeout(r, 100));
  expect(await vacuums()).toBe(before + 1);
  expect(await linkedIds()).toHaveLength(30);
});

test('a sealer that links fewer rows than that vacuums what it linked once enough time has passed since its last VACUUM', async () => {
  const vacuums = async (): Promise<number> =>
    Number((await knex.raw(`SELECT vacuum_count + autovacuum_count AS n FROM pg_stat_user_tables WHERE relname = 'audit_unsealed'`)).rows[0].n);
  const before = await vacuums();
  const sealer = new AuditSealer(knex, 'stream-t', { batch: 10, vacuumEvery: 1000, vacuumAfterMs: 1500 });
  await store(3);
  await sealer.sealed();
  // Linked well within the interval: no VACUUM (given time for any statistics to arrive).
  await new Promise((r) => setTimeout(r, 2000));
  expect(await vacuums()).toBe(before);
  await store(3);
  await sealer.sealed();
  for (let i = 0; i < 50 && (await vacuums()) === before; i++) await new Promise((r) => setTimeout(r, 100));
  expect(await vacuums()).toBe(before + 1);
});

test('an AuditEvent changed with SQL while it waits in the queue is reported as modified, before and after it is linked', async () => {
  const [first, second] = await store(2);
  await knex.transaction(async (trx) => {
    await trx.raw('SET LOCAL session_replication_role = replica');
    await trx.raw(`UPDATE "AuditEvent" SET content = jsonb_set(content, '{outcome}', '"8"') WHERE id = ?`, [first]);
  });
  let report = await verifyAuditChain(knex);
  expect(report.problems.map((p) => [p.kind, p.auditEventId])).toEqual([['modified', first]]);
  await new AuditSealer(knex, 'stream-b').sealed();
  report = await verifyAuditChain(knex);
  expect(report.problems.map((p) => [p.kind, p.auditEventId])).toEqual([['modified', first]]);
  expect(await linkedIds()).toContain(second);
});

test('an AuditEvent inserted with plain SQL, triggers on, is never queued and is reported as inserted', async () => {
  await store(1);
  await knex.raw(`INSERT INTO "AuditEvent" (id, version_id, last_updated, content) SELECT 'forged', 1, now(), content || '{"id":"forged"}' FROM "AuditEvent" LIMIT 1`);
  await new AuditSealer(knex, 'stream-c').sealed();
  const report = await verifyAuditChain(knex);
  expect(report.problems.map((p) => [p.kind, p.auditEventId])).toEqual([['inserted', 'forged']]);
});

test('two processes sealing one queue at once link every AuditEvent exactly once, each stream without gaps', async () => {
  const ids = await store(600);
  const a = new AuditSealer(knex, 'stream-d', { batch: 50 });
  const b = new AuditSealer(knex, 'stream-e', { batch: 50 });
  await Promise.all([a.sealed(), b.sealed(), a.sealed(), b.sealed()]);
  const linked = await linkedIds();
  expect(linked.length).toBe(600);
  expect(new Set(linked)).toEqual(new Set(ids));
  const report = await verifyAuditChain(knex);
  expect(report).toMatchObject({ problems: [], pending: 0, checked: 600 });
});

test('a chain written before sealing existed (scheme 1) still verifies, and a change to one of its AuditEvents is still found', async () => {
  const [id] = await store(1);
  // Take it out of the queue and link it as the server did before migration 008.
  await knex('audit_unsealed').delete();
  const { content } = await knex('AuditEvent').where({ id }).first();
  await knex('audit_chain').insert({ stream: 'old', seq: 1, audit_event_id: id, hash: chainHash(GENESIS, content), prev_hash: GENESIS, scheme: 1 });
  expect((await verifyAuditChain(knex)).problems).toEqual([]);
  await knex.transaction(async (trx) => {
    await trx.raw('SET LOCAL session_replication_role = replica');
    await trx.raw(`UPDATE "AuditEvent" SET content = jsonb_set(content, '{action}', '"D"') WHERE id = ?`, [id]);
  });
  expect((await verifyAuditChain(knex)).problems.map((p) => [p.kind, p.auditEventId])).toEqual([['modified', id]]);
});

test('reads’ AuditEvents left in the outbox by a server from before sealing become AuditEvents, linked, when a server starts', async () => {
  const left = auditEvent('4');
  delete (left as Partial<AuditEvent>).id;
  await knex('audit_outbox').insert({ event: JSON.stringify(left) });
  const recorder = new AuditRecorder(knex, options, 'http://test/fhir');
  await recorder.start();
  await recorder.sealed();
  await recorder.close();
  expect(Number((await knex('audit_outbox').count({ n: '*' }))[0].n)).toBe(0);
  const stored = await knex('AuditEvent').select('id', 'content');
  expect(stored).toHaveLength(1);
  expect(stored[0].content).toMatchObject({ outcome: '4', recorded: left.recorded });
  expect(await linkedIds()).toEqual([stored[0].id]);
  expect((await verifyAuditChain(knex)).problems).toEqual([]);
});

/** Batching tests wait up to a second for announced reads, so a loaded machine cannot split a batch. */
const PATIENT_MS = 1000;

test('reads still being answered join the batch of the first one to finish: one statement, one lastUpdated for all three', async () => {
  const recorder = new AuditRecorder(knex, options, 'http://test/fhir', { groupWaitMs: PATIENT_MS });
  const arrivals = [recorder.expect(), recorder.expect(), recorder.expect()];
  const events = [auditEvent(), auditEvent(), auditEvent()].map(({ id: _id, ...rest }) => rest as AuditEvent);
  const first = recorder.record([events[0]], arrivals[0]);
  // The others finish their handlers a moment later, while the batch waits for them.
  await new Promise((r) => setImmediate(r));
  const rest = [recorder.record([events[1]], arrivals[1]), recorder.record([events[2]], arrivals[2])];
  await Promise.all([first, ...rest]);
  await recorder.close();
  const stamps = await knex('AuditEvent').select('last_updated');
  expect(stamps).toHaveLength(3);
  expect(new Set(stamps.map((r: { last_updated: Date }) => r.last_updated.toISOString())).size).toBe(1);
});

test('finishing a read twice (a failure after its record) counts once: the next reads still share a batch', async () => {
  const recorder = new AuditRecorder(knex, options, 'http://test/fhir', { groupWaitMs: PATIENT_MS });
  const failed = recorder.expect();
  failed();
  failed();
  const [a, b] = [recorder.expect(), recorder.expect()];
  const first = recorder.record([withoutId(auditEvent())], a);
  await new Promise((r) => setImmediate(r));
  await Promise.all([first, recorder.record([withoutId(auditEvent())], b)]);
  await recorder.close();
  const stamps = await knex('AuditEvent').select('last_updated');
  expect(stamps).toHaveLength(2);
  expect(new Set(stamps.map((r: { last_updated: Date }) => r.last_updated.toISOString())).size).toBe(1);
});

function withoutId(event: AuditEvent): AuditEvent {
  const { id: _id, ...rest } = event;
  return rest as AuditEvent;
}

test('a pass that fails is reported and leaves its rows queued for the next one', async () => {
  const [id] = await store(1);
  // Someone already holds seq 1 of this stream: the pass's chain insert fails.
  await knex('audit_chain').insert({ stream: 'taken', seq: 1, audit_event_id: 'other', hash: 'x', prev_hash: GENESIS, scheme: 2 });
  const errors: unknown[] = [];
  const sealer = new AuditSealer(knex, 'taken', { batch: 1000, onError: (err) => errors.push(err) });
  sealer.soon();
  await sealer.close();
  expect(errors.length).toBeGreaterThan(0);
  expect(await knex('audit_unsealed').where({ audit_event_id: id }).first()).toBeDefined();
  await new AuditSealer(knex, 'free').sealed();
  expect(await linkedIds()).toContain(id);
});

test('a sealer takes a large batch, from a queue whose last VACUUM saw it empty, with a few page visits per row rather than a pass over the batch per row', async () => {
  // A busy server's VACUUM of the drained queue cannot truncate its last page (other
  // sessions hold locks on it; TRUNCATE false does the same here at once), and leaves
  // statistics of pages and no rows: the state in which `seq IN (SELECT … FOR UPDATE
  // SKIP LOCKED)` was planned as a nested loop that re-ran the locking subquery for every
  // row it deleted.
  await knex('audit_unsealed').insert({ audit_event_id: 'drained', digest: 'x' });
  await knex('audit_unsealed').delete();
  await knex.raw('VACUUM (TRUNCATE false) audit_unsealed');
  const stats = (await knex.raw(`SELECT relpages, reltuples FROM pg_class WHERE relname = 'audit_unsealed'`)).rows[0];
  expect(stats.reltuples).toBe(0);
  expect(stats.relpages).toBeGreaterThan(0);

  const rows = 2000;
  const trx = await knex.transaction();
  try {
    await trx.raw(
      `INSERT INTO audit_unsealed (audit_event_id, digest) SELECT 'e' || i, encode(sha256(i::text::bytea), 'hex') FROM generate_series(1, ?) AS i`,
      [rows]
    );
    const plan = (await trx.raw(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${TAKE_BATCH_SQL}`, [rows])).rows[0]['QUERY PLAN'][0].Plan;
    expect(plan['Actual Rows']).toBe(rows);
    // Measured: ~5.5 buffer visits per row this way; the nested loop made ~340 per row at 600 rows, and more the larger the batch.
    expect(plan['Shared Hit Blocks'] / rows).toBeLessThan(20);
  } finally {
    await trx.rollback();
  }
});

test('an idle look at the queue reads the index of the rows linked since the last VACUUM, not their heap', async () => {
  // Linked rows are deleted, and stay in the heap until VACUUM (every minute at most): a
  // look in no order read them all, four times a second. An index entry is marked dead once
  // no snapshot can see its row, so autovacuum (whose ANALYZE holds one) is kept out here.
  await knex.raw('ALTER TABLE audit_unsealed SET (autovacuum_enabled = false)');
  await knex.raw(
    `INSERT INTO audit_unsealed (audit_event_id, digest) SELECT gen_random_uuid()::text, encode(sha256(i::text::bytea), 'hex') FROM generate_series(1, 20000) AS i`
  );
  await knex('audit_unsealed').delete();
  const look = queueLook(knex).toSQL().toNative();
  const blocks = async (): Promise<number> =>
    (await knex.raw(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${look.sql.replace(/\$\d+/g, (p) => String(look.bindings[Number(p.slice(1)) - 1]))}`)).rows[0]['QUERY PLAN'][0]
      .Plan['Shared Hit Blocks'];
  try {
    const heapPages = Number((await knex.raw(`SELECT pg_relation_size('audit_unsealed') / current_setting('block_size')::int AS n`)).rows[0].n);
    // A look marks the index's dead entries; the next ones pass over the index's pages
    // (~400 entries each), not the heap's (~60 queued rows each). Looked at until then
    // (another session's snapshot may still see the rows for a moment).
    let read = await blocks();
    for (let i = 0; i < 50 && read >= heapPages / 4; i++) {
      await new Promise((r) => setTimeout(r, 100));
      read = await blocks();
    }
    expect(read).toBeLessThan(heapPages / 4);
    expect(await queueLook(knex)).toBeUndefined();
  } finally {
    await knex.raw('ALTER TABLE audit_unsealed RESET (autovacuum_enabled)');
  }
});

test('a sealer writes its stream head to its anchor after each commit, and an anchor it cannot write is reported while linking goes on', async () => {
  const base = await mkdtemp(path.join(os.tmpdir(), 'anchors-'));
  try {
    const anchors = await ChainAnchors.open(knex, base);
    const errors: unknown[] = [];
    const sealer = new AuditSealer(knex, 'stream-anchored', { batch: 10, anchors, onError: (err) => errors.push(err) });
    const ids = await store(25);
    await sealer.sealed();
    const head = await knex('audit_chain').where({ stream: 'stream-anchored' }).orderBy('seq', 'desc').first();
    const { anchors: read } = await readAnchors(anchors.dir);
    expect(read).toEqual([{ stream: 'stream-anchored', seq: 25, hash: head.hash, auditEventId: ids[24], sealedAt: expect.any(String) }]);
    expect(anchors.dir).toBe(path.join(base, await databaseInstance(knex)));

    // The folder gone: the next commit's anchor fails, the rows are linked all the same.
    await rm(base, { recursive: true });
    await store(3);
    await sealer.sealed();
    expect(await knex('audit_chain').where({ stream: 'stream-anchored' }).count({ n: '*' }).first()).toEqual({ n: 28 });
    expect(errors).toHaveLength(1);
    expect((errors[0] as NodeJS.ErrnoException).code).toBe('ENOENT');
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});
