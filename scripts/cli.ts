import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Bundle, Resource, StructureDefinition } from '@medplum/fhirtypes';
import { Command } from 'commander';
import pino from 'pino';
import { ConfigError, loadConfig } from '../server/config';
import { addClient, CliError, planClient, type ClientAddOptions } from './cli/client-add';
import { addUser, planUser, type UserAddOptions } from './cli/user-add';

// The database, the FHIR definitions and the storage layer take most of a second to load:
// each command loads what it uses, and a mistake in the options is reported before any of it.
const openDatabase: typeof import('./open-database').openDatabase = (...args) =>
  (require('./open-database') as typeof import('./open-database')).openDatabase(...args);

/** Runs `work` on the database of the current settings and prints the lines it returns, one each. */
async function printFromDatabase(work: (knex: import('knex').Knex) => Promise<string[]>): Promise<void> {
  const db = await openDatabase(loadConfig(), pino({ level: 'warn' }));
  try {
    for (const line of await work(db.knex)) console.log(line);
  } finally {
    await db.close();
  }
}

/** Admin CLI: `npm run --silent cli -- <command>`. Settings come from the same env as the server. */
const program = new Command('cli').description('FHIR server administration').showHelpAfterError();

program
  .command('migrate')
  .description('create or upgrade the database schema (the server also does this at start)')
  .action(async () => {
    const db = await openDatabase(loadConfig(), pino({ level: 'warn' }));
    try {
      console.log(`schema up to date (${db.changes} search index changes applied)`);
    } finally {
      await db.close();
    }
  });

program
  .command('validate')
  .description('validate FHIR JSON resource files against the R4 definitions and profiles, offline')
  .argument('<files...>', 'JSON files, one resource each')
  .option('--profile <url>', "also validate against this profile (R4's own, or one given with --with)")
  .option('--with <files...>', "StructureDefinition files (or Bundles of them) to know besides R4's own, e.g. an IG's profiles and extensions")
  .addHelpText('after', "\nAs $validate: the profiles each resource claims in meta.profile, and R4's vital signs profile for an Observation with a vital sign's code, are applied too.")
  .action((files: string[], options: { profile?: string; with?: string[] }) => {
    const { isBlocking, validateResource } = require('../server/validation/validate-resource') as typeof import('../server/validation/validate-resource');
    const { applicableProfileIssues } = require('../server/validation/applicable-profiles') as typeof import('../server/validation/applicable-profiles');
    const { officialProfile } = require('../server/validation/official-profiles') as typeof import('../server/validation/official-profiles');
    const given = new Map<string, StructureDefinition>();
    for (const file of options.with ?? []) {
      const content = JSON.parse(readFileSync(file, 'utf8')) as StructureDefinition | Bundle;
      const definitions = content.resourceType === 'Bundle' ? (content.entry ?? []).map((e) => e.resource) : [content];
      for (const sd of definitions) if (sd?.resourceType === 'StructureDefinition' && sd.url) given.set(sd.url, sd);
    }
    const resolve = (url: string): StructureDefinition | undefined => given.get(url.split('|')[0]) ?? officialProfile(url);
    let failed = 0;
    for (const file of files) {
      let resource: unknown;
      try {
        resource = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        console.log(`${file}: not readable JSON: ${(err as Error).message}`);
        failed++;
        continue;
      }
      const issues = validateResource(resource);
      if (isResourceObject(resource)) issues.push(...applicableProfileIssues(resource, options.profile, resolve));
      const errors = issues.filter(isBlocking);
      console.log(`${file}: ${errors.length === 0 ? 'valid' : 'INVALID'}`);
      for (const i of issues) {
        console.log(`  ${i.severity} ${i.expression?.join(', ') ?? ''}: ${i.diagnostics ?? i.details?.text ?? ''}`);
      }
      failed += errors.length > 0 ? 1 : 0;
    }
    process.exitCode = failed > 0 ? 1 : 0;
  });

function isResourceObject(value: unknown): value is Resource {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { resourceType?: unknown }).resourceType === 'string';
}

const client = program.command('client').description('OAuth clients: SMART apps, backend services, confidential clients');

client
  .command('add')
  .description('register a client, or replace the registration with the same id')
  .requiredOption('--id <id>', 'client_id')
  .option('--name <name>', 'display name (shown on the consent page)')
  .option('--secret <secret>', 'confidential client: client_secret_basic and client_secret_post')
  .option('--jwks-file <file>', 'backend service (private_key_jwt, RS384/ES384): a JWK Set file with public keys')
  .option('--jwks-url <url>', 'backend service: the URL of its JWK Set (https, or http on localhost)')
  .option('--public', 'public app (browser or native): no secret, PKCE S256 required')
  .option('--redirect-uri <urls...>', 'OAuth redirect URI; repeatable; required with --public')
  .requiredOption('--scope <scopes>', 'space-separated scopes the client may be granted')
  .addHelpText('after', '\nExactly one of --secret, --jwks-file/--jwks-url, --public.')
  .action(async (options: ClientAddOptions) => {
    const plan = planClient(options);
    const db = await openDatabase(loadConfig(), pino({ level: 'warn' }));
    try {
      const { summary, replaced } = await addClient(db.knex, plan);
      for (const w of plan.warnings) console.error(`warning: ${w}`);
      if (replaced) console.error(`note: client ${plan.client.id} existed: its registration is replaced`);
      console.log(summary);
    } finally {
      await db.close();
    }
  });

const user = program.command('user').description('login accounts, linked to the Patient, Practitioner, RelatedPerson or Person they are');

user
  .command('add')
  .description('create a login account, or replace password, fhirUser, role and TOTP of the same username')
  .requiredOption('--username <username>', 'login name')
  .requiredOption('--password <password>', 'at least 8 characters')
  .requiredOption('--fhir-user <reference>', 'Patient/ID, Practitioner/ID, RelatedPerson/ID or Person/ID')
  .option('--role <role>', 'admin, practitioner, nurse, receptionist, patient, pharmacist, lab-technician, insurer, auditor (default: patient for Patient, practitioner for Practitioner)')
  .option('--totp', 'enrol a TOTP second factor; prints its secret and otpauth:// URI once')
  .action(async (options: UserAddOptions) => {
    const plan = planUser(options);
    const config = loadConfig();
    const db = await openDatabase(config, pino({ level: 'warn' }));
    try {
      const { Repository } = require('../server/storage/repository') as typeof import('../server/storage/repository');
      const repository = new Repository(db.knex, { searchDefaultCount: config.searchDefaultCount, searchMaxCount: config.searchMaxCount });
      const { lines, warnings, notes } = await addUser(db.knex, plan, repository);
      for (const w of warnings) console.error(`warning: ${w}`);
      for (const n of notes) console.error(`note: ${n}`);
      for (const line of lines) console.log(line);
    } finally {
      await db.close();
    }
  });

const grant = program.command('grant').description("what clients were granted (tokens, refresh tokens, codes)");

grant
  .command('revoke')
  .description("end what a client was granted, for one user or everyone: refresh tokens revoked, codes dropped, access tokens refused")
  .requiredOption('--client <id>', 'client_id')
  .option('--username <username>', 'only what this user granted (default: every user, and the client\'s own tokens)')
  .action(async (options: import('./cli/grant-revoke').GrantRevokeOptions) => {
    const { revokeGrant } = require('./cli/grant-revoke') as typeof import('./cli/grant-revoke');
    await printFromDatabase((knex) => revokeGrant(knex, options));
  });

const healthCard = program.command('health-card').description('SMART Health Cards ($emergency-card, $health-cards-issue): issuer keys and revocation');

healthCard
  .command('revoke')
  .description("revoke a patient's SMART Health Cards issued until now (listed on every issuer key's revocation list)")
  .requiredOption('--patient <id>', 'the Patient id')
  .action(async (options: { patient: string }) => {
    const { revokeHealthCards } = require('./cli/health-card') as typeof import('./cli/health-card');
    await printFromDatabase((knex) => revokeHealthCards(knex, options.patient));
  });

healthCard
  .command('rotate-key')
  .description('a new issuer key signs SMART Health Cards from now on; the old ones stay published so their cards verify')
  .action(async () => {
    const { rotateHealthCardKeyCommand } = require('./cli/health-card') as typeof import('./cli/health-card');
    await printFromDatabase(rotateHealthCardKeyCommand);
  });

/** Network errors, and PostgreSQL's "wrong password" and "no such database". */
const DATABASE_UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', '28P01', '28000', '3D000']);

const audit = program.command('audit').description('the AuditEvent trail');

audit
  .command('verify')
  .description('check every audit hash chain and its anchors: modified, removed, inserted AuditEvents, broken links, truncated or rewritten streams (exit 1 if any)')
  .option('--anchors <dir>', 'the anchors to check against: a copy of AUDIT_ANCHOR_DIR (default: AUDIT_ANCHOR_DIR)')
  .action(async (options: { anchors?: string }) => {
    const { auditVerify } = require('./cli/audit-verify') as typeof import('./cli/audit-verify');
    const config = loadConfig();
    const db = await openDatabase(config, pino({ level: 'warn' }));
    try {
      const { ok, lines } = await auditVerify(db.knex, options.anchors ? path.resolve(options.anchors) : config.auditAnchorDir);
      for (const line of lines) console.log(line);
      process.exitCode = ok ? 0 : 1;
    } finally {
      await db.close();
    }
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (err instanceof CliError) {
    console.error(`error: ${err.message}`);
  } else if (typeof code === 'string' && DATABASE_UNREACHABLE.has(code)) {
    console.error(`error: cannot use the database (check DATABASE_URL): ${(err as Error).message}`);
  } else {
    console.error(err instanceof ConfigError ? `Configuration error: ${err.message}` : err);
  }
  process.exit(1);
});
