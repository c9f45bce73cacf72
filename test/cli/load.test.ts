import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { freePort } from '../../server/core/free-port';
import { startTestServer, type TestServer } from '../support/test-server';
import { SHARED_DATA_DIR } from '../../scripts/shared-data-dir';

const ROOT = path.join(__dirname, '../..');
const SYNTHEA = path.join(SHARED_DATA_DIR, 'synthea');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The load tool as a user runs it, in its own process (async: the server under test shares this event loop). */
function load(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.FHIR_URL;
    delete env.FHIR_TOKEN;
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/load.ts', ...args], { cwd: ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

interface BundleJson {
  entry?: { resource?: { resourceType: string } }[];
}

function readGz(file: string): BundleJson {
  return JSON.parse(gunzipSync(readFileSync(file)).toString('utf8')) as BundleJson;
}

function countOf(bundles: BundleJson[], resourceType?: string): number {
  return bundles.flatMap((b) => b.entry ?? []).filter((e) => e.resource && (!resourceType || e.resource.resourceType === resourceType)).length;
}

async function total(server: TestServer, query: string): Promise<number> {
  const res = await fetch(`${server.base}/${query}${query.includes('?') ? '&' : '?'}_summary=count`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { total: number }).total;
}

describe('npm run load', () => {
  let server: TestServer;
  let dir: string;
  /** The hospital and practitioner batches and the two smallest patient transactions, as loaded. */
  let good: BundleJson[];

  beforeAll(async () => {
    server = await startTestServer();
    dir = mkdtempSync(path.join(os.tmpdir(), 'fhir-load-test-'));
    const files = readdirSync(SYNTHEA).filter((f) => f.endsWith('.json.gz'));
    const information = files.filter((f) => f.startsWith('0-'));
    const patients = files
      .filter((f) => !f.startsWith('0-'))
      .sort((a, b) => statSync(path.join(SYNTHEA, a)).size - statSync(path.join(SYNTHEA, b)).size)
      .slice(0, 2);
    for (const file of [...information, ...patients]) {
      copyFileSync(path.join(SYNTHEA, file), path.join(dir, file));
    }
    good = [...information, ...patients].map((file) => readGz(path.join(dir, file)));
    // A transaction whose second entry is invalid: nothing of it may be stored, not even the valid Patient.
    writeFileSync(
      path.join(dir, 'broken.json'),
      JSON.stringify({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:6d1e2a3c-0000-4000-8000-000000000001', resource: { resourceType: 'Patient', gender: 'female' }, request: { method: 'POST', url: 'Patient' } },
          {
            fullUrl: 'urn:uuid:6d1e2a3c-0000-4000-8000-000000000002',
            resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, effectiveDateTime: '2020-13-45' },
            request: { method: 'POST', url: 'Observation' },
          },
        ],
      })
    );
    // Not a Bundle: a folder's stray JSON (like Synthea's manifest.json) is skipped, not sent.
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ files: ['a', 'b'] }));
  });

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await server?.stop();
  });

  test('loads a folder of Synthea bundles, information first, reports the broken bundle with its reason and exits 1', async () => {
    const run = await load('--url', server.base, '--concurrency', '2', dir);

    expect(run.status).toBe(1);
    expect(run.stdout).toContain('Bundles: 4 ok, 1 failed, of 5');
    const resources = countOf(good);
    expect(run.stdout).toContain(`Resources: ${resources.toLocaleString('en-US')} (${resources.toLocaleString('en-US')} created)`);
    expect(run.stdout).toMatch(/Rate: [\d,]+ resources\/s, [\d.]+ bundles\/s/);
    expect(run.stdout).toContain('manifest.json: not a FHIR resource (no resourceType)');
    // The failure names the file, the status, the server's diagnostics and the failing entry.
    expect(run.stdout).toMatch(/Failures:\n {2}broken\.json:\n {4}400: .*Invalid date.*'2020-13-45'.*\[failing entry: Bundle\.entry\[1\] \(POST Observation, urn:uuid:6d1e2a3c-0000-4000-8000-000000000002, Observation\)\]/);
    expect(run.stderr).toContain('2 shared first, then 3 with concurrency 2');

    // Everything the good bundles hold is on the server, and nothing of the broken one.
    expect(await total(server, 'Patient')).toBe(countOf(good, 'Patient'));
    expect(await total(server, 'Organization')).toBe(countOf(good, 'Organization'));
    expect(await total(server, 'PractitionerRole')).toBe(countOf(good, 'PractitionerRole'));
    expect(await total(server, 'Observation')).toBe(countOf(good, 'Observation'));
    // The patients' conditional references (Organization?identifier=…) resolved to the hospitals loaded first.
    const encounters = (await (await fetch(`${server.base}/Encounter?_count=1`)).json()) as { entry: { resource: { serviceProvider: { reference: string } } }[] };
    const provider = encounters.entry[0].resource.serviceProvider.reference;
    expect(provider).toMatch(/^Organization\/[^?]+$/);
    expect((await fetch(`${server.base}/${provider}`)).status).toBe(200);
  });

  test('exits 0 when every bundle is accepted; a batch with a failing entry counts as failed and names the entry', async () => {
    const okDir = mkdtempSync(path.join(dir, 'ok-'));
    writeFileSync(
      path.join(okDir, 'one.json'),
      JSON.stringify({ resourceType: 'Bundle', type: 'batch', entry: [{ resource: { resourceType: 'Patient', gender: 'male' }, request: { method: 'POST', url: 'Patient' } }] })
    );
    const ok = await load('--url', server.base, '--quiet', okDir);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('Bundles: 1 ok, 0 failed, of 1');
    expect(ok.stderr).not.toContain('failed:');

    const partial = path.join(okDir, 'partial.json');
    writeFileSync(
      partial,
      JSON.stringify({
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { resource: { resourceType: 'Patient', birthDate: 'yesterday' }, request: { method: 'POST', url: 'Patient' } },
          { resource: { resourceType: 'Patient', gender: 'other' }, request: { method: 'POST', url: 'Patient' } },
        ],
      })
    );
    const run = await load('--url', server.base, partial);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain('Bundles: 0 ok, 1 failed, of 1');
    expect(run.stdout).toContain('Resources: 1 (1 created)');
    expect(run.stdout).toMatch(/partial\.json:\n {4}Bundle\.entry\[0\] \(POST Patient, Patient\): 400 Bad Request: .*yesterday/);
    expect(run.stderr).toContain('failed: partial.json');
  });

  test('a batch goes before the transactions that refer to it, even when its type comes after its entries', async () => {
    const orderDir = mkdtempSync(path.join(dir, 'order-'));
    const identifier = { system: 'http://example.org/load-test', value: 'batch-first' };
    writeFileSync(
      path.join(orderDir, 'a-transaction.json'),
      JSON.stringify({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            fullUrl: 'urn:uuid:6d1e2a3c-0000-4000-8000-000000000003',
            resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient?identifier=${identifier.system}|${identifier.value}` } },
            request: { method: 'POST', url: 'Observation' },
          },
        ],
      })
    );
    // Key order as written: `type` last, after the entries.
    writeFileSync(
      path.join(orderDir, 'z-shared.json'),
      `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","identifier":[${JSON.stringify(identifier)}]},"request":{"method":"POST","url":"Patient"}}],"type":"batch"}`
    );
    const run = await load('--url', server.base, orderDir);
    expect(run.stdout).toContain('Bundles: 2 ok, 0 failed, of 2');
    expect(run.status).toBe(0);
    expect(run.stderr).toContain('1 shared first, then 1 with concurrency 2');
  });

  test('a server that cannot be reached gets a clear message and exit code 2, before any file is sent', async () => {
    const port = await freePort();
    const run = await load('--url', `http://127.0.0.1:${port}/fhir`, dir);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`Cannot reach the FHIR server at http://127.0.0.1:${port}/fhir`);
    expect(run.stderr).toContain('ECONNREFUSED');
    expect(run.stderr).toContain('--url or FHIR_URL');
    expect(run.stdout).toBe('');
  });

  test('no Bundle files, or a path that does not exist, exits 2 with the reason', async () => {
    const empty = mkdtempSync(path.join(dir, 'empty-'));
    const none = await load('--url', server.base, empty);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('no Bundle files');

    const missing = await load('--url', server.base, path.join(dir, 'nope'));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('no such file or folder');
  });
});
