import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createKnex } from '../server/storage/database';
import { startEmbeddedPostgres } from '../server/storage/embedded-postgres';
import { prepareSchema } from '../server/storage/prepare-schema';
import { withDatabase } from './support/database-url';

/**
 * One PostgreSQL for the run (DATABASE_URL's server, or an embedded one when unset) and
 * one migrated template database; each test file clones the template (CREATE DATABASE
 * … TEMPLATE) instead of migrating 146 tables again.
 */
export default async function globalSetup(): Promise<void> {
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    const dir = path.join(os.tmpdir(), `fhir-test-pg-${process.pid}-${randomBytes(3).toString('hex')}`);
    const embedded = await startEmbeddedPostgres(dir, 'postgres', () => undefined);
    (globalThis as { __embeddedPg?: typeof embedded }).__embeddedPg = embedded;
    adminUrl = embedded.url;
  }
  const template = `fhir_test_tpl_${randomBytes(4).toString('hex')}`;
  const admin = createKnex(adminUrl, 2);
  await admin.raw(`CREATE DATABASE "${template}"`);
  await admin.destroy();

  const templateUrl = withDatabase(adminUrl, template);
  const knex = createKnex(templateUrl, 2);
  await prepareSchema(knex);
  await knex.destroy();

  // The audit chains' anchors of the run's test servers (chain-anchors.ts), removed at the end.
  // Servers spawned by tests and the CLI inherit it through AUDIT_ANCHOR_DIR.
  process.env.TEST_AUDIT_ANCHOR_DIR = await mkdtemp(path.join(os.tmpdir(), 'fhir-test-anchors-'));
  process.env.AUDIT_ANCHOR_DIR = process.env.TEST_AUDIT_ANCHOR_DIR;
  process.env.TEST_ADMIN_DATABASE_URL = adminUrl;
  process.env.TEST_TEMPLATE_DATABASE = template;
}

