import { createKnex } from '../server/storage/database';

export default async function globalTeardown(): Promise<void> {
  const adminUrl = process.env.TEST_ADMIN_DATABASE_URL;
  const template = process.env.TEST_TEMPLATE_DATABASE;
  if (adminUrl && template) {
    const admin = createKnex(adminUrl, 1);
    await admin.raw(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`);
    await admin.destroy();
  }
  const embedded = (globalThis as { __embeddedPg?: { stop(): Promise<void> } }).__embeddedPg;
  await embedded?.stop();
}
