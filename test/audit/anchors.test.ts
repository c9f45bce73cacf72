import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Knex } from 'knex';
import { linkHash, GENESIS, verifyAuditChain } from '../../server/audit/audit-chain';
import { readAnchors } from '../../server/audit/chain-anchors';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * The chain alone is consistent after two things someone with the database (and not the
 * anchor folder) can do: remove a stream's newest entries with their AuditEvents, or
 * change an AuditEvent and recompute every later hash. The anchors the sealer writes
 * outside the database after each commit catch both (docs/audit.md, "Anchors").
 */
const ROOT = path.join(__dirname, '../..');

async function serverWithTrail(): Promise<TestServer> {
  const server = await startTestServer();
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${server.base}/Patient`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Patient' }) });
    expect(res.status).toBe(201);
    await Promise.all([1, 2].map(() => fetch(`${server.base}/Patient?_count=1`).then((r) => r.text())));
  }
  // Stored (the journal moved) and linked; the anchor is written after the link commits.
  expect((await fetch(`${server.base}/AuditEvent?_count=1`)).status).toBe(200);
  await server.server.audit!.sealed();
  return server;
}

async function cli(databaseUrl: string, ...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/cli.ts', 'audit', 'verify', ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: databaseUrl },
    });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, out: e.stdout };
  }
}

/** What someone with direct database access could do: triggers off for this transaction. */
async function asIntruder(knex: Knex, work: (trx: Knex.Transaction) => Promise<unknown>): Promise<void> {
  await knex.transaction(async (trx) => {
    await trx.raw('SET LOCAL session_replication_role = replica');
    await work(trx);
  });
}

async function anchorsOf(server: TestServer) {
  const dir = server.server.audit!.anchorDir!;
  return { dir, ...(await readAnchors(dir)) };
}

describe('a stream cut at its end', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await serverWithTrail();
  }, 60000);
  afterAll(() => server?.stop());

  test("the sealer's anchor names the newest link of its stream, and verify checks the stream against it", async () => {
    const { anchors, unreadable } = await anchorsOf(server);
    expect(unreadable).toEqual([]);
    expect(anchors).toHaveLength(1);
    const head = await server.server.knex('audit_chain').where({ stream: anchors[0].stream }).orderBy('seq', 'desc').first();
    expect(anchors[0]).toMatchObject({ seq: Number(head.seq), hash: head.hash, auditEventId: head.audit_event_id });
    const { code, out } = await cli(server.databaseUrl);
    expect(out).toContain('audit trail intact');
    expect(out).toContain('1 streams checked against their anchors');
    expect(code).toBe(0);
  }, 30000);

  test('removing the newest links with their AuditEvents leaves a chain consistent in itself, which the anchor reports as truncated, also from a copy of the anchors', async () => {
    const copy = await mkdtemp(path.join(os.tmpdir(), 'anchors-copy-'));
    try {
      await cp(path.dirname((await anchorsOf(server)).dir), copy, { recursive: true });
      const [anchor] = (await anchorsOf(server)).anchors;
      const knex = server.server.knex;
      const tail: { seq: string; audit_event_id: string }[] = await knex('audit_chain').where({ stream: anchor.stream }).orderBy('seq', 'desc').limit(3);
      await asIntruder(knex, async (trx) => {
        await trx('audit_chain').where({ stream: anchor.stream }).whereIn('seq', tail.map((t) => t.seq)).delete();
        await trx('AuditEvent').whereIn('id', tail.map((t) => t.audit_event_id)).delete();
      });
      expect((await verifyAuditChain(knex)).problems).toEqual([]);
      const report = await verifyAuditChain(knex, [anchor]);
      expect(report.problems).toEqual([
        expect.objectContaining({ kind: 'truncated', stream: anchor.stream, seq: anchor.seq, detail: expect.stringContaining(`ends at seq ${anchor.seq - 3}`) }),
      ]);

      const { code, out } = await cli(server.databaseUrl);
      expect(out).toMatch(new RegExp(`truncated: stream ${anchor.stream} seq ${anchor.seq}: the stream ends at seq ${anchor.seq - 3}`));
      expect(out).toContain('audit trail NOT intact');
      expect(code).toBe(1);

      // Whoever removed the anchors too is still caught by a copy kept elsewhere.
      await rm((await anchorsOf(server)).dir, { recursive: true });
      const without = await cli(server.databaseUrl);
      expect(without.out).toContain('0 streams checked against their anchors');
      expect(without.out).toContain('1 streams have no anchor there');
      const fromCopy = await cli(server.databaseUrl, '--anchors', copy);
      expect(fromCopy.out).toContain(`truncated: stream ${anchor.stream}`);
      expect(fromCopy.code).toBe(1);
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  }, 60000);
});

describe('a stream recomputed after an AuditEvent was changed', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await serverWithTrail();
  }, 60000);
  afterAll(() => server?.stop());

  test('changing an AuditEvent and every later hash of its stream passes the chain alone, and the anchor reports the stream as rewritten', async () => {
    const [anchor] = (await anchorsOf(server)).anchors;
    const knex = server.server.knex;
    const rows: { seq: string; audit_event_id: string }[] = await knex('audit_chain').where({ stream: anchor.stream }).orderBy('seq');
    await asIntruder(knex, async (trx) => {
      await trx.raw(`UPDATE "AuditEvent" SET content = jsonb_set(content, '{outcome}', '"8"') WHERE id = ?`, [rows[1].audit_event_id]);
      // The chain recomputed from the changed event on, as verify would recompute it.
      let prev = GENESIS;
      for (const row of rows) {
        const { digest } = (await trx.raw(`SELECT encode(sha256(convert_to(content::text, 'UTF8')), 'hex') AS digest FROM "AuditEvent" WHERE id = ?`, [row.audit_event_id])).rows[0];
        const hash = linkHash(prev, digest);
        await trx('audit_chain').where({ stream: anchor.stream, seq: row.seq }).update({ hash, prev_hash: prev });
        prev = hash;
      }
    });
    expect((await verifyAuditChain(knex)).problems).toEqual([]);
    expect((await verifyAuditChain(knex, [anchor])).problems).toEqual([expect.objectContaining({ kind: 'rewritten', stream: anchor.stream, seq: anchor.seq })]);
    const { code, out } = await cli(server.databaseUrl);
    expect(out).toContain(`rewritten: stream ${anchor.stream} seq ${anchor.seq}`);
    expect(code).toBe(1);
  }, 60000);

  test('another database has a folder of anchors of its own', async () => {
    const other = await serverWithTrail();
    try {
      const mine = await anchorsOf(server);
      const theirs = await anchorsOf(other);
      expect(theirs.dir).not.toBe(mine.dir);
      expect(theirs.anchors.map((a) => a.stream)).toEqual([other.server.audit!.stream]);
      expect((await cli(other.databaseUrl)).code).toBe(0);
    } finally {
      await other.stop();
    }
  }, 60000);
});
