import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Knex } from 'knex';
import { verifyAuditChain } from '../../server/audit/audit-chain';
import { startTestServer, type TestServer } from '../support/test-server';

/** `cli audit verify` recomputes every stream's hash chain from the database and reports tampering. */
const ROOT = path.join(__dirname, '../..');
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
  for (let i = 0; i < 5; i++) {
    const res = await fetch(`${server.base}/Patient`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Patient' }) });
    expect(res.status).toBe(201);
    // Concurrent reads share a group commit.
    await Promise.all([1, 2, 3].map(() => fetch(`${server.base}/Patient?_count=1`).then((r) => r.text())));
  }
  expect((await fetch(`${server.base}/AuditEvent?_count=1`)).status).toBe(200);
  // AuditEvents are linked into the chain in the background, moments after they are stored.
  await server.server.audit!.sealed();
}, 60000);

afterAll(async () => {
  await server?.stop();
});

async function cli(): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/cli.ts', 'audit', 'verify'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: server.databaseUrl },
    });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, out: e.stdout };
  }
}

/** What someone with direct database access could do: triggers off for this transaction. */
async function asIntruder(work: (trx: Knex.Transaction) => Promise<unknown>): Promise<void> {
  await server.server.knex.transaction(async (trx) => {
    await trx.raw('SET LOCAL session_replication_role = replica');
    await work(trx);
  });
}

async function auditIds(): Promise<string[]> {
  const rows: { audit_event_id: string }[] = await server.server.knex('audit_chain').select('audit_event_id').orderBy(['stream', 'seq']);
  return rows.map((r) => r.audit_event_id);
}

test('audit verify passes on an untouched database and exits 0', async () => {
  const report = await verifyAuditChain(server.server.knex);
  expect(report.problems).toEqual([]);
  expect(report.checked).toBeGreaterThanOrEqual(20);
  const { code, out } = await cli();
  expect(out).toContain('audit trail intact');
  expect(code).toBe(0);
}, 30000);

test('audit verify reports an AuditEvent changed with SQL as modified, a deleted one as removed, one inserted without the chain as inserted, and exits 1', async () => {
  const [first, second] = await auditIds();
  await asIntruder((trx) => trx.raw(`UPDATE "AuditEvent" SET content = jsonb_set(content, '{outcome}', '"8"') WHERE id = ?`, [first]));
  let report = await verifyAuditChain(server.server.knex);
  expect(report.problems.map((p) => [p.kind, p.auditEventId])).toEqual([['modified', first]]);

  await asIntruder((trx) => trx('AuditEvent').where({ id: second }).delete());
  report = await verifyAuditChain(server.server.knex);
  expect(report.problems.map((p) => [p.kind, p.auditEventId])).toContainEqual(['removed', second]);

  await asIntruder((trx) =>
    trx.raw(`INSERT INTO "AuditEvent" (id, version_id, last_updated, content) SELECT 'forged', 1, now(), content || '{"id":"forged"}' FROM "AuditEvent" LIMIT 1`)
  );
  report = await verifyAuditChain(server.server.knex);
  expect(report.problems.map((p) => [p.kind, p.auditEventId])).toContainEqual(['inserted', 'forged']);

  const { code, out } = await cli();
  expect(out).toMatch(/modified: .*\nremoved: .*\ninserted: AuditEvent\/forged/);
  expect(code).toBe(1);
}, 30000);

test('audit verify reports a chain row removed from the middle of a stream as a broken link', async () => {
  const rows: { stream: string; seq: string }[] = await server.server.knex('audit_chain').select('stream', 'seq').orderBy(['stream', 'seq']).limit(5);
  await asIntruder((trx) => trx('audit_chain').where({ stream: rows[3].stream, seq: rows[3].seq }).delete());
  const report = await verifyAuditChain(server.server.knex);
  expect(report.problems.some((p) => p.kind === 'broken-link' && p.seq === Number(rows[3].seq) + 1)).toBe(true);
  // The chain row's AuditEvent is now one without a chain entry.
  expect(report.problems.some((p) => p.kind === 'inserted')).toBe(true);
});
