import type { Knex } from 'knex';
import * as resourceTables from './migrations/001-resource-tables';
import * as customSearchParameters from './migrations/002-custom-search-parameters';
import * as auth from './migrations/003-auth';
import * as audit from './migrations/004-audit';
import * as healthCardKeys from './migrations/005-health-card-keys';
import * as auditOutbox from './migrations/006-audit-outbox';
import * as consentNotify from './migrations/007-consent-notify';
import * as auditSealing from './migrations/008-audit-sealing';
import * as bulkExport from './migrations/009-bulk-export';
import * as subscriptionQueue from './migrations/010-subscription-queue';
import * as lz4Content from './migrations/011-lz4-content';
import * as exportTypeFilter from './migrations/012-export-type-filter';
import * as exportElementsPatients from './migrations/013-export-elements-patients';
import * as exportAssociatedData from './migrations/014-export-associated-data';
import * as refreshAccessTokens from './migrations/015-refresh-access-tokens';
import * as exportWritten from './migrations/016-export-written';
import * as grantRevocation from './migrations/017-grant-revocation';
import * as healthCardRevocation from './migrations/018-health-card-revocation';

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

/** Migrations in order. Listed in code so that they run the same under tsx, jest and a build. */
const migrations: [string, Migration][] = [
  ['001-resource-tables', resourceTables],
  ['002-custom-search-parameters', customSearchParameters],
  ['003-auth', auth],
  ['004-audit', audit],
  ['005-health-card-keys', healthCardKeys],
  ['006-audit-outbox', auditOutbox],
  ['007-consent-notify', consentNotify],
  ['008-audit-sealing', auditSealing],
  ['009-bulk-export', bulkExport],
  ['010-subscription-queue', subscriptionQueue],
  ['011-lz4-content', lz4Content],
  ['012-export-type-filter', exportTypeFilter],
  ['013-export-elements-patients', exportElementsPatients],
  ['014-export-associated-data', exportAssociatedData],
  ['015-refresh-access-tokens', refreshAccessTokens],
  ['016-export-written', exportWritten],
  ['017-grant-revocation', grantRevocation],
  ['018-health-card-revocation', healthCardRevocation],
];

const source: Knex.MigrationSource<Migration> = {
  getMigrations: async () => migrations.map(([, m]) => m),
  getMigrationName: (migration) => migrations.find(([, m]) => m === migration)?.[0] ?? 'unknown',
  getMigration: async (migration) => migration,
};

export async function runMigrations(knex: Knex): Promise<void> {
  await knex.migrate.latest({ migrationSource: source });
}
