import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../server/core/free-port';
import { createKnex } from '../../server/storage/database';
import { withDatabase } from '../support/database-url';
import { startArguments } from '../../scripts/start-command';

/** An answered request has its AuditEvent committed: kill -9 right after the answer loses nothing. */
const ROOT = path.join(__dirname, '../..');

/** Every line of every journal segment under `dir`. */
function journalLines(dir: string): { subtype: { code: string }[] }[] {
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ndjson'));
  return files.flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)));
}

test.each(['journal', 'database'])('AUDIT_READS=%s: a create answered 201 and a read answered 200 just before kill -9 both have their AuditEvents after a restart', async (mode) => {
  const journalDir = mkdtempSync(path.join(os.tmpdir(), 'crash-journal-'));
  const adminUrl = process.env.TEST_ADMIN_DATABASE_URL as string;
  const database = `fhir_test_${randomBytes(6).toString('hex')}`;
  const admin = createKnex(adminUrl, 1);
  await admin.raw(`CREATE DATABASE "${database}" TEMPLATE "${process.env.TEST_TEMPLATE_DATABASE}"`);
  const start = async () => {
    const port = await freePort();
    const child = spawn(process.execPath, startArguments(), {
      cwd: ROOT,
      env: { ...process.env, AUDIT_READS: mode, AUDIT_JOURNAL_DIR: journalDir, AUDIT_JOURNAL_INTERVAL_MS: '60000', AUTH_REQUIRED: 'false', PORT: String(port), DATABASE_URL: withDatabase(adminUrl, database), LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    const base = `http://127.0.0.1:${port}/fhir`;
    for (let i = 0; i < 200; i++) {
      if (await fetch(`${base}/metadata`).then((r) => r.status === 200, () => false)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return { child, base };
  };
  let first: Awaited<ReturnType<typeof start>> | undefined;
  let second: Awaited<ReturnType<typeof start>> | undefined;
  try {
    first = await start();
    const created = await fetch(`${first.base}/Patient`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: '{"resourceType":"Patient"}' });
    expect(created.status).toBe(201);
    const id = ((await created.json()) as { id: string }).id;
    const read = await fetch(`${first.base}/Patient/${id}`);
    expect(read.status).toBe(200);
    first.child.kill('SIGKILL');
    await new Promise((r) => first?.child.once('exit', r));
    // With a journal (moved only every minute here), the read's event was still in the file, not in PostgreSQL.
    const left = journalLines(journalDir).map((e) => e.subtype[0].code);
    if (mode === 'journal') expect(left).toContain('read');
    else expect(left).toEqual([]);
    expect(left).not.toContain('create');

    second = await start();
    const found = await fetch(`${second.base}/AuditEvent?entity=Patient/${id}`);
    const bundle = (await found.json()) as { entry?: { resource: { subtype: { code: string }[] } }[] };
    expect((bundle.entry ?? []).map((e) => e.resource.subtype[0].code).sort()).toEqual(['create', 'read']);
  } finally {
    first?.child.kill('SIGKILL');
    second?.child.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    await admin.raw(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.destroy();
    rmSync(journalDir, { recursive: true, force: true });
  }
}, 60000);
