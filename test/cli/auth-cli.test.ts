import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import * as OTPAuth from 'otpauth';
import { verifySecret } from '../../server/auth/secret-hash';
import { totpCode, verifyTotp } from '../../server/auth/totp';
import { createKnex } from '../../server/storage/database';
import { Repository } from '../../server/storage/repository';
import { withDatabase } from '../support/database-url';

const ROOT = path.join(__dirname, '../..');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

let databaseUrl: string;
let database: string;
let knex: Knex;
let dir: string;

/** The admin CLI as an operator runs it, in its own process, on this file's database. */
function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/cli.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: databaseUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A refusal: exit code 1, one clear message on stderr, no stack trace, nothing on stdout. */
function expectRefused(run: Run, message: string | RegExp): void {
  expect(run.status).toBe(1);
  expect(run.stderr).toMatch(message);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  expect(run.stdout).toBe('');
}

function writeJson(name: string, value: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(value));
  return file;
}

function publicJwk(pair: { publicKey: { export(o: { format: 'jwk' }): object } }, extra: object): object {
  return { ...pair.publicKey.export({ format: 'jwk' }), ...extra };
}

beforeAll(async () => {
  const adminUrl = process.env.TEST_ADMIN_DATABASE_URL as string;
  database = `fhir_test_${randomBytes(6).toString('hex')}`;
  const admin = createKnex(adminUrl, 1);
  await admin.raw(`CREATE DATABASE "${database}" TEMPLATE "${process.env.TEST_TEMPLATE_DATABASE as string}"`);
  await admin.destroy();
  databaseUrl = withDatabase(adminUrl, database);
  knex = createKnex(databaseUrl, 2);
  dir = mkdtempSync(path.join(os.tmpdir(), 'fhir-auth-cli-test-'));
});

afterAll(async () => {
  await knex?.destroy();
  rmSync(dir, { recursive: true, force: true });
  const admin = createKnex(process.env.TEST_ADMIN_DATABASE_URL as string, 1);
  await admin.raw(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  await admin.destroy();
});

describe('client add', () => {
  test('a confidential client is stored with an argon2id hash of its secret, and adding the same id again replaces the registration', async () => {
    const first = await cli(
      'client', 'add', '--id', 'ehr-1', '--name', 'Ward EHR', '--secret', 'first-secret-0123456789',
      '--redirect-uri', 'https://ehr.example/callback', '--scope', 'system/*.* user/*.rs openid'
    );
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(first.stdout.trim()).toBe(
      'client ehr-1 registered (confidential, client_secret_basic/client_secret_post; redirect URIs: https://ehr.example/callback; scope: system/*.* user/*.rs openid)'
    );
    const row = await knex('auth_client').where({ id: 'ehr-1' }).first();
    expect(row).toMatchObject({ name: 'Ward EHR', public: false, jwks: null, jwks_url: null, redirect_uris: ['https://ehr.example/callback'], scope: 'system/*.* user/*.rs openid' });
    expect(row.secret_hash).toMatch(/^\$argon2id\$/);
    expect(row.secret_hash).not.toContain('first-secret-0123456789');
    expect(await verifySecret(row.secret_hash, 'first-secret-0123456789')).toBe(true);

    const again = await cli('client', 'add', '--id', 'ehr-1', '--secret', 'second-secret-0123456789', '--scope', 'system/*.read');
    expect(again.status).toBe(0);
    expect(again.stderr).toContain('note: client ehr-1 existed');
    const rows = await knex('auth_client').where({ id: 'ehr-1' });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ name: null, redirect_uris: [], scope: 'system/*.read' });
    expect(await verifySecret(rows[0].secret_hash, 'second-secret-0123456789')).toBe(true);
    expect(await verifySecret(rows[0].secret_hash, 'first-secret-0123456789')).toBe(false);
  });

  test('a backend service keeps the public keys of its JWKS file that verify RS384 or ES384 and leaves out the others with a warning', async () => {
    const rsa = publicJwk(generateKeyPairSync('rsa', { modulusLength: 2048 }), { kid: 'rsa-1', alg: 'RS384', use: 'sig' });
    const p384 = publicJwk(generateKeyPairSync('ec', { namedCurve: 'P-384' }), { kid: 'ec-1' });
    const p256 = publicJwk(generateKeyPairSync('ec', { namedCurve: 'P-256' }), { kid: 'ec-p256' });
    const file = writeJson('jwks.json', { keys: [rsa, p384, p256] });

    const run = await cli('client', 'add', '--id', 'lab-1', '--jwks-file', file, '--scope', 'system/*.read');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('client lab-1 registered (backend service, private_key_jwt RS384/ES384; 2 keys from');
    expect(run.stderr).toContain('key 3 (kid ec-p256) left out: an EC key on curve P-256');
    const row = await knex('auth_client').where({ id: 'lab-1' }).first();
    expect(row).toMatchObject({ public: false, secret_hash: null, jwks_url: null, scope: 'system/*.read' });
    expect(row.jwks).toEqual({ keys: [rsa, p384] });
  });

  test('a public app is stored without a secret and with every redirect URI, given repeated or as several values', async () => {
    const scope = 'launch/patient patient/*.rs openid fhirUser offline_access';
    const run = await cli(
      'client', 'add', '--id', 'portal', '--public',
      '--redirect-uri', 'http://localhost:9000/callback', 'https://portal.example/cb',
      '--redirect-uri', 'com.example.portal:/oauth', '--scope', scope
    );
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('client portal registered (public, PKCE S256 required;');
    const row = await knex('auth_client').where({ id: 'portal' }).first();
    expect(row).toMatchObject({
      public: true,
      secret_hash: null,
      jwks: null,
      redirect_uris: ['http://localhost:9000/callback', 'https://portal.example/cb', 'com.example.portal:/oauth'],
      scope,
    });
  });

  test('bad scopes, a public client without a redirect URI, private key material, an insecure JWKS URL and two kinds of credentials are refused and nothing is stored', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const privateFile = writeJson('private.json', { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'oops' }] });
    const [badScope, noRedirect, privateJwk, insecureUrl, twoKinds] = await Promise.all([
      cli('client', 'add', '--id', 'bad-1', '--secret', 'a-long-enough-secret-value', '--scope', 'system/*.read patient/Observation.write? superuser'),
      cli('client', 'add', '--id', 'bad-2', '--public', '--scope', 'openid fhirUser patient/*.rs'),
      cli('client', 'add', '--id', 'bad-3', '--jwks-file', privateFile, '--scope', 'system/*.read'),
      cli('client', 'add', '--id', 'bad-4', '--jwks-url', 'http://keys.example/jwks', '--scope', 'system/*.read'),
      cli('client', 'add', '--id', 'bad-5', '--public', '--secret', 'a-long-enough-secret-value', '--redirect-uri', 'https://a.example/cb', '--scope', 'openid'),
    ]);
    expectRefused(badScope, 'error: unknown or malformed scopes: "patient/Observation.write?", "superuser"');
    expectRefused(noRedirect, 'error: --public needs at least one --redirect-uri');
    expectRefused(privateJwk, /key 1 \(kid oops\) contains private key material \("d".*register only the public keys/);
    expectRefused(insecureUrl, '--jwks-url "http://keys.example/jwks" must use https');
    expectRefused(twoKinds, 'give exactly one of --secret');
    expect(await knex('auth_client').whereIn('id', ['bad-1', 'bad-2', 'bad-3', 'bad-4', 'bad-5'])).toEqual([]);
  });
});

describe('user add', () => {
  test('a Patient user gets role patient by default, with a warning only when the Patient does not exist yet', async () => {
    await new Repository(knex, { searchDefaultCount: 20, searchMaxCount: 100 }).create({ resourceType: 'Patient' }, undefined, 'cli-patient-1');
    const [known, unknown] = await Promise.all([
      cli('user', 'add', '--username', 'pat1', '--password', 'correct-horse', '--fhir-user', 'Patient/cli-patient-1'),
      cli('user', 'add', '--username', 'pat2', '--password', 'correct-horse', '--fhir-user', 'Patient/not-loaded-yet'),
    ]);
    expect(known.stderr).toBe('');
    expect(known.status).toBe(0);
    expect(known.stdout.trim()).toBe('user pat1 added (role patient, fhirUser Patient/cli-patient-1)');
    expect(unknown.status).toBe(0);
    expect(unknown.stderr).toContain('warning: Patient/not-loaded-yet does not exist yet');
    expect(unknown.stdout.trim()).toBe('user pat2 added (role patient, fhirUser Patient/not-loaded-yet)');

    const row = await knex('auth_user').where({ username: 'pat1' }).first();
    expect(row).toMatchObject({ fhir_user: 'Patient/cli-patient-1', role: 'patient', totp_secret: null });
    expect(row.password_hash).toMatch(/^\$argon2id\$/);
    expect(await verifySecret(row.password_hash, 'correct-horse')).toBe(true);
  });

  test('--totp prints the secret and an otpauth URI once and stores the secret; adding the user again without --totp replaces the account and removes it', async () => {
    const run = await cli('user', 'add', '--username', 'nurse1', '--password', 'night-shift-1', '--fhir-user', 'Practitioner/n1', '--role', 'nurse', '--totp');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('user nurse1 added (role nurse, fhirUser Practitioner/n1)');
    const uri = /otpauth:\/\/totp\/\S+/.exec(run.stdout)?.[0] as string;
    const totp = OTPAuth.URI.parse(uri) as OTPAuth.TOTP;
    expect(totp.issuer).toBe('FHIR server');
    expect(totp.label).toBe('nurse1');
    expect(run.stdout).toContain(`TOTP secret (shown only now): ${totp.secret.base32}`);
    const row = await knex('auth_user').where({ username: 'nurse1' }).first();
    expect(row.totp_secret).toBe(totp.secret.base32);
    expect(verifyTotp(row.totp_secret, totpCode(totp.secret.base32))).toBe(true);

    const again = await cli('user', 'add', '--username', 'nurse1', '--password', 'day-shift-22', '--fhir-user', 'Practitioner/n2');
    expect(again.status).toBe(0);
    expect(again.stdout.trim()).toBe('user nurse1 added (role practitioner, fhirUser Practitioner/n2)');
    expect(again.stderr).toContain('TOTP second factor; it is removed');
    const rows = await knex('auth_user').where({ username: 'nurse1' });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: row.id, fhir_user: 'Practitioner/n2', role: 'practitioner', totp_secret: null });
    expect(await verifySecret(rows[0].password_hash, 'day-shift-22')).toBe(true);
  });

  test('an unknown role, a RelatedPerson without --role, a short password and a fhir-user of another type are refused and nothing is stored', async () => {
    const [badRole, noRole, shortPassword, badType] = await Promise.all([
      cli('user', 'add', '--username', 'bad1', '--password', 'long-enough', '--fhir-user', 'Practitioner/p1', '--role', 'doctor'),
      cli('user', 'add', '--username', 'bad2', '--password', 'long-enough', '--fhir-user', 'RelatedPerson/r1'),
      cli('user', 'add', '--username', 'bad3', '--password', 'short', '--fhir-user', 'Patient/p1'),
      cli('user', 'add', '--username', 'bad4', '--password', 'long-enough', '--fhir-user', 'Organization/o1', '--role', 'admin'),
    ]);
    expectRefused(badRole, 'error: unknown role "doctor": use one of admin, practitioner, nurse, receptionist, patient, pharmacist, lab-technician, insurer, auditor');
    expectRefused(noRole, 'error: --role is required for a RelatedPerson user');
    expectRefused(shortPassword, 'error: --password is too short: at least 8 characters');
    expectRefused(badType, 'error: --fhir-user "Organization/o1" must be Type/id');
    expect(await knex('auth_user').whereIn('username', ['bad1', 'bad2', 'bad3', 'bad4'])).toEqual([]);
  });
});
