import { rm } from 'node:fs/promises';
import { createKnex } from '../server/storage/database';

export default async function globalTeardown(): Promise<void> {
  const adminUrl = process.env.TEST_ADMIN_DATABASE_URL;
  const template = process.env.TEST_TEMPLATE_DATABASE;
  if (adminUrl && template) {
    const admin = createKnex(adminUrl, 1);
    await admin.raw(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`);
    await admin.destroy();
  }
  if (process.env.TEST_AUDIT_ANCHOR_DIR) await rm(process.env.TEST_AUDIT_ANCHOR_DIR, { recursive: true, force: true });
  const embedded = (globalThis as { __embeddedPg?: { stop(): Promise<void> } }).__embeddedPg;
  await embedded?.stop();
}
