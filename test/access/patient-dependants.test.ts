import { ConfigError, loadConfig } from '../../server/config';
import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * A patient user's dependants (access/patient-dependants.ts): a parent P whom a Person
 * links (Person.link.target) to the RelatedPerson R, and R is the parent (v3-RoleCode
 * PRN) of the child D. S is a stranger. Every user token has
 * `user/*.cruds`: what is refused is refused by the care boundary.
 */
const ROLE_CODE = 'http://terminology.hl7.org/CodeSystem/v3-RoleCode';

let server: TestServer;
let admin: string;
const ids: Record<string, string> = {};
let tokens = 0;

const call = (token: string, method: string, path: string, body?: unknown) =>
  fhirRequest(method, `${server.base}${path}`, { body, headers: { Authorization: `Bearer ${token}` } });
const entryIds = (bundle: any): string[] => (bundle.entry ?? []).map((e: any) => e.resource.id).sort();
const observation = (patient: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'hr' }, subject: { reference: `Patient/${patient}` } });
const relatedPerson = (patient: string, code: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'RelatedPerson',
  active: true,
  patient: { reference: `Patient/${patient}` },
  relationship: [{ coding: [{ system: ROLE_CODE, code }] }],
  ...extra,
});
const samePerson = (patientId: string, relatedPersonId: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Person',
  link: [{ target: { reference: `Patient/${patientId}` } }, { target: { reference: `RelatedPerson/${relatedPersonId}` } }],
  ...extra,
});

/** A fresh token (and user) each time, so that no relationships cached for an earlier one are reused. */
const patientUser = (target: TestServer, fhirUser: string) =>
  mintToken(target, { scope: 'user/*.cruds', userId: `u-${fhirUser.replace('/', '-')}-${++tokens}`, fhirUser, role: 'patient' });

async function createIn(target: TestServer, token: string, resource: Record<string, unknown>): Promise<string> {
  const res = await fhirRequest('POST', `${target.base}/${resource.resourceType}`, { body: resource, headers: { Authorization: `Bearer ${token}` } });
  expect(res.status).toBe(201);
  return res.body.id;
}
const create = (resource: Record<string, unknown>) => createIn(server, admin, resource);

/** A new parent Patient whom a Person links to a new RelatedPerson of `child` with relationship `code`. */
async function parentOf(child: string, code: string, extra: Record<string, unknown> = {}): Promise<{ parent: string; relatedPerson: string }> {
  const related = await create(relatedPerson(child, code, extra));
  const parent = await create({ resourceType: 'Patient', name: [{ family: `Parent-${code}` }] });
  await create(samePerson(parent, related));
  return { parent, relatedPerson: related };
}

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  admin = await mintToken(server, { scope: 'system/*.*' });
  ids.D = await create({ resourceType: 'Patient', name: [{ family: 'Child' }], birthDate: '2018-05-01' });
  ids.S = await create({ resourceType: 'Patient', name: [{ family: 'Stranger' }] });
  ({ parent: ids.P, relatedPerson: ids.R } = await parentOf(ids.D, 'PRN'));
  for (const p of ['P', 'D', 'S']) ids[`obs${p}`] = await create(observation(ids[p]));
}, 60000);

afterAll(async () => {
  await server?.stop();
});

describe('a parent whom a Person links to the child\'s RelatedPerson', () => {
  it('reads the child\'s Patient and Observations', async () => {
    const token = await patientUser(server, `Patient/${ids.P}`);
    expect((await call(token, 'GET', `/Patient/${ids.D}`)).status).toBe(200);
    expect((await call(token, 'GET', `/Observation/${ids.obsD}`)).status).toBe(200);
    expect(entryIds((await call(token, 'GET', `/Observation?patient=${ids.D}`)).body)).toEqual([ids.obsD]);
  });

  it('finds only their own and the child\'s data in a search across all of them', async () => {
    const token = await patientUser(server, `Patient/${ids.P}`);
    expect(entryIds((await call(token, 'GET', '/Observation')).body)).toEqual([ids.obsP, ids.obsD].sort());
    expect(entryIds((await call(token, 'GET', '/Patient')).body)).toEqual([ids.P, ids.D].sort());
    expect(entryIds((await call(token, 'GET', '/RelatedPerson')).body)).toEqual([ids.R]);
  });

  it('still cannot see a stranger', async () => {
    const token = await patientUser(server, `Patient/${ids.P}`);
    const res = await call(token, 'GET', `/Patient/${ids.S}`);
    expect(res.status).toBe(403);
    expect(res.text).not.toContain('Stranger');
    expect((await call(token, 'GET', `/Observation/${ids.obsS}`)).status).toBe(403);
    expect((await call(token, 'GET', `/Observation?patient=${ids.S}`)).body.entry ?? []).toEqual([]);
  });

  it('writes for the child what the patient role may write, and not for a stranger', async () => {
    const token = await patientUser(server, `Patient/${ids.P}`);
    expect((await call(token, 'POST', '/Observation', observation(ids.D))).status).toBe(201);
    expect((await call(token, 'POST', '/Observation', observation(ids.S))).status).toBe(403);
  });

  it('cannot make up a guardian: the patient role may not create a RelatedPerson', async () => {
    const token = await patientUser(server, `Patient/${ids.P}`);
    expect((await call(token, 'POST', '/RelatedPerson', relatedPerson(ids.S, 'GUARD'))).status).toBe(403);
  });
});

describe('a patient is refused another patient\'s record', () => {
  it('once the RelatedPerson is no longer active', async () => {
    const { parent, relatedPerson: related } = await parentOf(ids.D, 'MTH');
    expect((await call(await patientUser(server, `Patient/${parent}`), 'GET', `/Patient/${ids.D}`)).status).toBe(200);
    const current = (await call(admin, 'GET', `/RelatedPerson/${related}`)).body;
    expect((await call(admin, 'PUT', `/RelatedPerson/${related}`, { ...current, active: false })).status).toBe(200);
    expect((await call(await patientUser(server, `Patient/${parent}`), 'GET', `/Patient/${ids.D}`)).status).toBe(403);
  });

  it('when the RelatedPerson\'s period has ended', async () => {
    const { parent } = await parentOf(ids.D, 'GUARD', { period: { start: '2019-01-01', end: '2020-12-31' } });
    expect((await call(await patientUser(server, `Patient/${parent}`), 'GET', `/Patient/${ids.D}`)).status).toBe(403);
  });

  it('when the relationship does not act for the patient (a friend)', async () => {
    const { parent } = await parentOf(ids.D, 'FRND');
    const token = await patientUser(server, `Patient/${parent}`);
    expect((await call(token, 'GET', `/Patient/${ids.D}`)).status).toBe(403);
    expect(entryIds((await call(token, 'GET', '/Observation')).body)).toEqual([]);
  });

  it('when no Person links them to the parent RelatedPerson, or the Person is inactive', async () => {
    const unlinked = await create({ resourceType: 'Patient', name: [{ family: 'Unlinked' }] });
    expect((await call(await patientUser(server, `Patient/${unlinked}`), 'GET', `/Patient/${ids.D}`)).status).toBe(403);
    const retired = await create({ resourceType: 'Patient', name: [{ family: 'Retired link' }] });
    await create(samePerson(retired, ids.R, { active: false }));
    expect((await call(await patientUser(server, `Patient/${retired}`), 'GET', `/Patient/${ids.D}`)).status).toBe(403);
  });

  it('when a patient tries to link themself: neither their own Patient.link nor a Person of their own counts', async () => {
    const intruder = await create({ resourceType: 'Patient', name: [{ family: 'Intruder' }] });
    const token = await patientUser(server, `Patient/${intruder}`);
    const own = (await call(token, 'GET', `/Patient/${intruder}`)).body;
    const linked = await call(token, 'PUT', `/Patient/${intruder}`, { ...own, link: [{ type: 'seealso', other: { reference: `RelatedPerson/${ids.R}` } }] });
    expect(linked.status).toBe(200);
    expect((await call(await patientUser(server, `Patient/${intruder}`), 'GET', `/Patient/${ids.D}`)).status).toBe(403);
    expect((await call(token, 'POST', '/Person', samePerson(intruder, ids.R))).status).toBe(403);
    expect((await call(await patientUser(server, `Patient/${intruder}`), 'GET', `/Patient/${ids.D}`)).status).toBe(403);
  });
});

describe('a user whose fhirUser is the RelatedPerson', () => {
  it('sees the patient they act for and themself, and nobody else', async () => {
    const token = await patientUser(server, `RelatedPerson/${ids.R}`);
    expect((await call(token, 'GET', `/Patient/${ids.D}`)).status).toBe(200);
    expect((await call(token, 'GET', `/RelatedPerson/${ids.R}`)).status).toBe(200);
    expect(entryIds((await call(token, 'GET', '/Observation')).body)).toEqual(expect.arrayContaining([ids.obsD]));
    expect((await call(token, 'GET', `/Patient/${ids.P}`)).status).toBe(403);
    expect((await call(token, 'GET', `/Observation/${ids.obsS}`)).status).toBe(403);
  });

  it('sees nothing of the patient when the relationship does not act for them', async () => {
    const friend = await create(relatedPerson(ids.D, 'FRND'));
    expect((await call(await patientUser(server, `RelatedPerson/${friend}`), 'GET', `/Patient/${ids.D}`)).status).toBe(403);
  });
});

describe('PATIENT_DEPENDANTS', () => {
  it('defaults to true and takes only true or false', () => {
    expect(loadConfig({}).patientDependants).toBe(true);
    expect(loadConfig({ PATIENT_DEPENDANTS: 'false' }).patientDependants).toBe(false);
    expect(() => loadConfig({ PATIENT_DEPENDANTS: 'sometimes' })).toThrow(ConfigError);
  });

  it('=false leaves a patient user only their own record', async () => {
    const off = await startTestServer({ AUTH_REQUIRED: 'true', PATIENT_DEPENDANTS: 'false' });
    try {
      const offAdmin = await mintToken(off, { scope: 'system/*.*' });
      const child = await createIn(off, offAdmin, { resourceType: 'Patient', name: [{ family: 'Child' }] });
      const related = await createIn(off, offAdmin, relatedPerson(child, 'PRN'));
      const parent = await createIn(off, offAdmin, { resourceType: 'Patient', name: [{ family: 'Parent' }] });
      await createIn(off, offAdmin, samePerson(parent, related));
      const asParent = await patientUser(off, `Patient/${parent}`);
      const get = (token: string, path: string) => fhirRequest('GET', `${off.base}${path}`, { headers: { Authorization: `Bearer ${token}` } });
      expect((await get(asParent, `/Patient/${child}`)).status).toBe(403);
      expect((await get(asParent, `/Patient/${parent}`)).status).toBe(200);
      expect((await get(await patientUser(off, `RelatedPerson/${related}`), `/Patient/${child}`)).status).toBe(403);
    } finally {
      await off.stop();
    }
  }, 60000);
});
