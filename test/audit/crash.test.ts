import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { freePort } from '../../server/core/free-port';
import { createKnex } from '../../server/storage/database';
import { withDatabase } from '../support/database-url';

/** An answered request has its AuditEvent committed: kill -9 right after the answer loses nothing. */
const ROOT = path.join(__dirname, '../..');

test('a create answered 201 and a read answered 200 just before kill -9 both have their AuditEvents after a restart', async () => {
  const adminUrl = process.env.TEST_ADMIN_DATABASE_URL as string;
  const database = `fhir_test_${randomBytes(6).toString('hex')}`;
  const admin = createKnex(adminUrl, 1);
  await admin.raw(`CREATE DATABASE "${database}" TEMPLATE "${process.env.TEST_TEMPLATE_DATABASE}"`);
  const start = async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, AUTH_REQUIRED: 'false', PORT: String(port), DATABASE_URL: withDatabase(adminUrl, database), LOG_LEVEL: 'warn' },
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
  }
}, 60000);
