import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { verifyAuditChain } from '../../server/audit/audit-chain';
import { AuditJournal, journalDirFor, ORPHAN_AFTER_MS } from '../../server/audit/audit-journal';
import { AuditRecorder } from '../../server/audit/audit-recorder';
import { newId } from '../../server/core/ids';
import { Repository } from '../../server/storage/repository';
import { emptyAuditTrail, readAuditEvent } from '../support/audit-trail';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * Reads' AuditEvents go to a journal file of the process before the answer, and from
 * there into PostgreSQL (docs/audit.md, "When it is written"). The server runs with
 * AUDIT=false so that only the recorders made here write AuditEvents.
 */
let server: TestServer;
let knex: Knex;
let dir: string;
const options = { searchDefaultCount: 20, searchMaxCount: 1000 };

beforeAll(async () => {
  server = await startTestServer({ AUDIT: 'false' });
  knex = server.server.knex;
});

afterAll(async () => {
  await server?.stop();
});

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'audit-journal-'));
  await emptyAuditTrail(knex);
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

const auditEvent = readAuditEvent;

function journaled(): AuditRecorder {
  return new AuditRecorder(knex, options, 'http://test/fhir', { journal: { dir, sync: false } });
}

function journalLines(): { id: string; outcome: string }[] {
  return readdirSync(dir).flatMap((f) =>
    readFileSync(path.join(dir, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
  );
}

async function storedIds(): Promise<string[]> {
  return (await knex('AuditEvent').select('id').orderBy('id')).map((r: { id: string }) => r.id);
}

/** The pid of a process that has ended. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' }).pid as number;
}

test('a recorded read is in the journal file when record resolves, and in PostgreSQL, linked into the chain, once settled; the file is then removed', async () => {
  const recorder = journaled();
  await recorder.start();
  await recorder.record([auditEvent('4')]);
  const lines = journalLines();
  expect(lines.map((l) => l.outcome)).toEqual(['4']);
  expect(recorder.journalBacklog()).toBe(1);

  await recorder.sealed();
  expect(recorder.journalBacklog()).toBe(0);
  expect(await storedIds()).toEqual([lines[0].id]);
  expect((await knex('audit_chain').select('audit_event_id')).map((r) => r.audit_event_id)).toEqual([lines[0].id]);
  expect(journalLines()).toEqual([]);
  expect((await verifyAuditChain(knex)).problems).toEqual([]);
  await recorder.close();
  expect(existsSync(dir)).toBe(false);
});

test('close stores what the journal holds', async () => {
  const recorder = journaled();
  await recorder.start();
  await Promise.all([recorder.record([auditEvent()]), recorder.record([auditEvent(), auditEvent()])]);
  await recorder.close();
  expect(await storedIds()).toHaveLength(3);
});

test('the segments of a process that died are stored by the next recorder to start, each event once, even those already stored, and a line cut short is skipped', async () => {
  const events = [auditEvent('0'), auditEvent('4'), auditEvent('8')].map((e) => ({ ...e, id: newId() }));
  // The first was stored before the process died, the file not yet removed.
  await new Repository(knex, options).createMany([events[0]]);
  const lines = events.map((e) => JSON.stringify(e)).join('\n') + '\n' + JSON.stringify(auditEvent()).slice(0, 40);
  writeFileSync(path.join(dir, `${os.hostname()}~${deadPid()}~${newId()}~1.ndjson`), lines);

  const recorder = journaled();
  await recorder.start();
  expect(await storedIds()).toEqual(events.map((e) => e.id).sort());
  expect(readdirSync(dir).filter((f) => !f.includes(recorder.stream))).toEqual([]);
  await recorder.sealed();
  expect((await verifyAuditChain(knex)).problems).toEqual([]);
  await recorder.close();
});

test('an event the write path refuses as invalid goes to the log, and does not hold up the others of its segment', async () => {
  const valid = [{ ...auditEvent(), id: newId() }, { ...auditEvent(), id: newId() }];
  const invalid = { ...auditEvent(), id: newId(), action: 'X' } as unknown as (typeof valid)[0];
  const lines = [valid[0], invalid, valid[1]].map((e) => JSON.stringify(e)).join('\n') + '\n';
  writeFileSync(path.join(dir, `${os.hostname()}~${deadPid()}~${newId()}~1.ndjson`), lines);
  const logged: string[] = [];
  const recorder = new AuditRecorder(knex, options, 'http://test/fhir', { onError: (err) => logged.push(String(err)), journal: { dir, sync: false } });
  await recorder.start();
  await recorder.close();
  expect(await storedIds()).toEqual(valid.map((e) => e.id).sort());
  expect(logged).toHaveLength(1);
  expect(logged[0]).toContain(invalid.id);
  expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
});

test('the segments of a live process, or of another host, are left alone', async () => {
  const line = JSON.stringify({ ...auditEvent(), id: newId() }) + '\n';
  const live = `${os.hostname()}~${process.ppid}~${newId()}~1.ndjson`;
  const elsewhere = `another-host~${deadPid()}~${newId()}~1.ndjson`;
  writeFileSync(path.join(dir, live), line);
  writeFileSync(path.join(dir, elsewhere), line);
  const recorder = journaled();
  await recorder.start();
  await recorder.close();
  expect(await storedIds()).toEqual([]);
  expect(readdirSync(dir).sort()).toEqual([elsewhere, live].sort());
});

test('a segment nobody touched for longer than ORPHAN_AFTER_MS is an orphan whatever host wrote it (a container that was replaced)', async () => {
  const event = { ...auditEvent(), id: newId() };
  const file = path.join(dir, `another-host~${process.ppid}~${newId()}~1.ndjson`);
  writeFileSync(file, JSON.stringify(event) + '\n');
  const past = new Date(Date.now() - ORPHAN_AFTER_MS - 1000);
  utimesSync(file, past, past);
  const recorder = journaled();
  await recorder.start();
  await recorder.close();
  expect(await storedIds()).toEqual([event.id]);
});

test('two recorders starting together claim an orphan once between them', async () => {
  const events = Array.from({ length: 20 }, () => ({ ...auditEvent(), id: newId() }));
  writeFileSync(path.join(dir, `${os.hostname()}~${deadPid()}~${newId()}~1.ndjson`), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  const recorders = [journaled(), journaled()];
  await Promise.all(recorders.map((r) => r.start()));
  await Promise.all(recorders.map((r) => r.close()));
  expect(await storedIds()).toEqual(events.map((e) => e.id).sort());
});

test('an append that fails part-way answers an error, and later appends go to a new segment, so no line runs into another; what was appended before is still handed over', () => {
  const journal = new AuditJournal(dir, newId(), false);
  const first = { ...auditEvent(), id: newId() };
  journal.append([first]);
  const realWrite = fs.writeSync;
  const spy = jest.spyOn(fs, 'writeSync').mockImplementationOnce(((fd: number, buffer: Buffer, offset: number, length: number) => {
    realWrite(fd, buffer, offset, Math.floor(length / 2));
    throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
  }) as unknown as typeof fs.writeSync);
  expect(() => journal.append([{ ...auditEvent(), id: newId() }])).toThrow(/no space/);
  spy.mockRestore();
  const third = { ...auditEvent(), id: newId() };
  journal.append([third]);
  const segments = journal.rotate();
  expect(segments.map((s) => s.events.map((e) => e.id))).toEqual([[first.id], [third.id]]);
  expect(new Set(segments.map((s) => s.file)).size).toBe(2);
  // Each file reads back whole lines only: the cut line is alone at the end of the first.
  expect(readFileSync(segments[1].file, 'utf8').trim()).toBe(JSON.stringify(third));
  for (const s of segments) journal.remove(s);
  journal.close();
});

test('a journal folder is per database: the same base folder never mixes two databases', () => {
  const a = journalDirFor('/j', 'postgres://u@db.example:5432/fhir');
  expect(a).toBe(path.join('/j', 'db.example_5432_fhir'));
  expect(journalDirFor('/j', 'postgres://u@db.example:5433/fhir')).not.toBe(a);
  expect(journalDirFor('/j', 'postgres://u@db.example/other')).not.toBe(a);
  // The embedded PostgreSQL's port changes at each start; its journal must not.
  expect(journalDirFor('/j', 'postgres://p@127.0.0.1:40001/fhir', true)).toBe(journalDirFor('/j', 'postgres://p@127.0.0.1:40999/fhir', true));
});
