import { ConsentWatch } from '../../server/access/consent-watch';
import { loadConfig } from '../../server/config';
import { startServer, type RunningServer } from '../../server/start';
import pino from 'pino';
import { freePort } from '../../server/core/free-port';
import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * Consent rules are reused between requests until a Consent changes (access/consent-watch.ts):
 * a change made through one server process applies to the other process's requests, and
 * a provision whose period ends stops applying without any Consent changing.
 */
let a: TestServer;
let b: RunningServer;
let bBase: string;
let system: string;
let doctor: string;
const ids: Record<string, string> = {};

const call = (base: string, token: string, method: string, path: string, body?: unknown) =>
  fhirRequest(method, `${base}${path}`, { body, headers: { Authorization: `Bearer ${token}` } });
const create = async (resource: Record<string, unknown>): Promise<string> => {
  const res = await call(a.base, system, 'POST', `/${resource.resourceType}`, resource);
  expect(res.status).toBe(201);
  return res.body.id;
};
const deny = (period?: { start?: string; end?: string }) => ({
  resourceType: 'Consent',
  status: 'active',
  scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
  category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
  patient: { reference: `Patient/${ids.patient}` },
  policyRule: { text: 'no' },
  provision: { type: 'deny', ...(period ? { period } : {}), actor: [{ role: { text: 'recipient' }, reference: { reference: `Practitioner/${ids.doctor}` } }] },
});
const status = async (base: string): Promise<number> => (await call(base, doctor, 'GET', `/Patient/${ids.patient}`)).status;

beforeAll(async () => {
  a = await startTestServer({ AUTH_REQUIRED: 'true' });
  const port = await freePort();
  // A second process on the same database (same issuer, so A's tokens hold here too).
  b = await startServer(loadConfig({ PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: a.url, DATABASE_URL: a.databaseUrl, AUTH_REQUIRED: 'true', RATE_LIMIT: 'false', AUDIT_ANCHOR_DIR: process.env.AUDIT_ANCHOR_DIR ?? '' }), pino({ level: 'silent' }));
  bBase = `http://127.0.0.1:${port}/fhir`;
  system = await mintToken(a, { scope: 'system/*.*' });
  ids.hospital = await create({ resourceType: 'Organization', name: 'H' });
  ids.doctor = await create({ resourceType: 'Practitioner', name: [{ family: 'Doc' }] });
  await create({ resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${ids.doctor}` }, organization: { reference: `Organization/${ids.hospital}` } });
  ids.patient = await create({ resourceType: 'Patient', managingOrganization: { reference: `Organization/${ids.hospital}` } });
  doctor = await mintToken(a, { scope: 'user/*.rs', userId: 'u-doc', fhirUser: `Practitioner/${ids.doctor}`, role: 'practitioner' });
}, 60000);

afterAll(async () => {
  await b?.stop();
  await a?.stop();
});

test('a Consent written through one process applies to the requests of another', async () => {
  // Both processes have read (and may keep) the rules: no Consent yet.
  expect(await status(a.base)).toBe(200);
  expect(await status(bBase)).toBe(200);
  expect(await status(bBase)).toBe(200);
  const consent = await create(deny());
  expect(await status(a.base)).toBe(403);
  // The other process learns of it by notification: allow it the delivery, no more.
  const deadline = Date.now() + 2000;
  let seen = await status(bBase);
  while (seen !== 403 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    seen = await status(bBase);
  }
  expect(seen).toBe(403);
  expect((await call(bBase, system, 'DELETE', `/Consent/${consent}`)).status).toBe(204);
  expect(await status(bBase)).toBe(200);
});

test('a deny whose period ends stops applying by itself, with no Consent changing', async () => {
  const end = new Date(Date.now() + 1500).toISOString();
  const consent = await create(deny({ end }));
  expect(await status(a.base)).toBe(403);
  expect(await status(a.base)).toBe(403);
  await new Promise((r) => setTimeout(r, Date.parse(end) - Date.now() + 50));
  expect(await status(a.base)).toBe(200);
  await call(a.base, system, 'DELETE', `/Consent/${consent}`);
});

test('the watch listens, moves to a new epoch on every Consent change, and is not live once stopped', async () => {
  const watch = ConsentWatch.forKnex(a.server.knex);
  await watch.start();
  try {
    expect(watch.live).toBe(true);
    const before = watch.epoch;
    await call(a.base, doctor, 'GET', `/Patient/${ids.patient}`);
    expect(watch.epoch).toBe(before);
    const consent = await create(deny());
    const deadline = Date.now() + 2000;
    while (watch.epoch === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(watch.epoch).toBeGreaterThan(before);
    await call(a.base, system, 'DELETE', `/Consent/${consent}`);
  } finally {
    await watch.stop();
  }
  expect(watch.live).toBe(false);
});
