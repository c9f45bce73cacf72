import { randomBytes } from 'node:crypto';
import { createKnex } from '../../server/storage/database';
import { withDatabase } from './database-url';

/** A test's own database, a copy of the migrated template that global-setup.ts prepares. */
export interface TemplateCopy {
  url: string;
  drop(): Promise<void>;
}

export async function copyTemplateDatabase(): Promise<TemplateCopy> {
  const adminUrl = process.env.TEST_ADMIN_DATABASE_URL as string;
  const template = process.env.TEST_TEMPLATE_DATABASE as string;
  const database = `fhir_test_${randomBytes(6).toString('hex')}`;
  const admin = createKnex(adminUrl, 1);
  await admin.raw(`CREATE DATABASE "${database}" TEMPLATE "${template}"`);
  await admin.destroy();
  return {
    url: withDatabase(adminUrl, database),
    drop: async () => {
      const again = createKnex(adminUrl, 1);
      await again.raw(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await again.destroy();
    },
  };
}
