import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * `Patient/[id]/$transfer` end to end with real tokens. Hospital A (department A1) holds
 * the patients, in beds; hospital B has a ward with an ICU bed and general beds; hospital
 * C has a single free general bed, for the races. Dr A works in A1, Dr B in B.
 */
let server: TestServer;
let system: string;
let drA: string;
let drB: string;
const ids: Record<string, string> = {};

const call = (token: string, method: string, path: string, body?: unknown) =>
  fhirRequest(method, `${server.base}${path}`, { body, headers: { Authorization: `Bearer ${token}` } });
const create = async (resource: Record<string, unknown>): Promise<string> => {
  const res = await call(system, 'POST', `/${resource.resourceType}`, resource);
  expect(res.status).toBe(201);
  return res.body.id;
};
const read = async (ref: string): Promise<any> => (await call(system, 'GET', `/${ref}`)).body;
const user = (fhirUser: string, role: string) => mintToken(server, { scope: 'user/*.cruds', userId: `u-${fhirUser}-${role}`, fhirUser, role });
const physical = (code: string) => ({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/location-physical-type', code }] });
const bedStatus = (code: 'U' | 'O') => ({ system: 'http://terminology.hl7.org/CodeSystem/v2-0116', code });
const bed = (name: string, ward: string, status: 'U' | 'O', kind?: string) =>
  create({
    resourceType: 'Location',
    name,
    status: 'active',
    physicalType: physical('bd'),
    operationalStatus: bedStatus(status),
    partOf: { reference: `Location/${ward}` },
    ...(kind ? { type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: kind }] }] } : {}),
  });
const ward = (name: string, org: string) => create({ resourceType: 'Location', name, status: 'active', physicalType: physical('wa'), managingOrganization: { reference: `Organization/${org}` } });
/** A patient of A lying in a new bed of A's ward, with an in-progress Encounter at department A1. */
const admittedAtA = async (name: string): Promise<{ patient: string; encounter: string; bed: string }> => {
  const patient = await create({ resourceType: 'Patient', name: [{ family: name }], managingOrganization: { reference: `Organization/${ids.A}` } });
  const inBed = await bed(`A bed of ${name}`, ids.wardA, 'O');
  const encounter = await create({
    resourceType: 'Encounter',
    status: 'in-progress',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
    subject: { reference: `Patient/${patient}` },
    serviceProvider: { reference: `Organization/${ids.A1}` },
    period: { start: '2026-12-01T08:00:00Z' },
    location: [{ location: { reference: `Location/${inBed}` }, status: 'active' }],
  });
  return { patient, encounter, bed: inBed };
};
const transferOf = (token: string, patient: string, parameter: unknown[]) =>
  call(token, 'POST', `/Patient/${patient}/$transfer`, { resourceType: 'Parameters', parameter });
const to = (org: string) => ({ name: 'destination', valueReference: { reference: `Organization/${org}` } });
const because = (text: string) => ({ name: 'reason', valueString: text });
const encountersOf = async (patient: string): Promise<any[]> =>
  ((await call(system, 'GET', `/Encounter?patient=Patient/${patient}&_count=100`)).body.entry ?? []).map((e: any) => e.resource);

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  system = await mintToken(server, { scope: 'system/*.*' });
  ids.A = await create({ resourceType: 'Organization', name: 'Hospital A' });
  ids.A1 = await create({ resourceType: 'Organization', name: 'Surgery A', partOf: { reference: `Organization/${ids.A}` } });
  ids.B = await create({ resourceType: 'Organization', name: 'Hospital B' });
  ids.C = await create({ resourceType: 'Organization', name: 'Hospital C' });
  ids.drA = await create({ resourceType: 'Practitioner', name: [{ family: 'Alpha' }] });
  ids.drB = await create({ resourceType: 'Practitioner', name: [{ family: 'Beta' }] });
  await create({ resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${ids.drA}` }, organization: { reference: `Organization/${ids.A1}` } });
  await create({ resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${ids.drB}` }, organization: { reference: `Organization/${ids.B}` } });
  ids.wardA = await ward('Ward A', ids.A);
  ids.wardB = await ward('Ward B', ids.B);
  ids.icuB = await bed('B ICU 1', ids.wardB, 'U', 'ICU');
  ids.generalB = await bed('B general 1', ids.wardB, 'U');
  ids.takenB = await bed('B general 2', ids.wardB, 'O');
  drA = await user(`Practitioner/${ids.drA}`, 'practitioner');
  drB = await user(`Practitioner/${ids.drB}`, 'practitioner');
}, 60000);

afterAll(async () => {
  await server?.stop();
});

describe('a transfer from A to B into an ICU bed', () => {
  let moved: { patient: string; encounter: string; bed: string };
  let observation: string;
  let response: any;

  beforeAll(async () => {
    moved = await admittedAtA('Moved');
    observation = await create({ resourceType: 'Observation', status: 'final', code: { text: 'hr' }, subject: { reference: `Patient/${moved.patient}` } });
  });

  it('is refused to B\'s staff before, who cannot see the patient either', async () => {
    expect([403, 404]).toContain((await call(drB, 'GET', `/Patient/${moved.patient}`)).status);
    expect((await transferOf(drB, moved.patient, [to(ids.B), because('we want them')])).status).toBe(403);
  });

  it('answers 200 with the Task and both Encounters', async () => {
    const res = await transferOf(drA, moved.patient, [to(ids.B), because('Needs cardiac ICU'), { name: 'destinationLocation', valueReference: { reference: `Location/${ids.icuB}` } }]);
    expect(res.status).toBe(200);
    response = res.body;
    expect(response.entry.map((e: any) => e.resource.resourceType)).toEqual(['Task', 'Encounter', 'Encounter']);
  });

  it('finishes the origin Encounter as a transfer and frees its bed', async () => {
    const finished = await read(`Encounter/${moved.encounter}`);
    expect(finished.status).toBe('finished');
    expect(finished.period.end).toBeDefined();
    expect(finished.hospitalization.dischargeDisposition.coding[0].code).toBe('other-hcf');
    expect(finished.location[0].status).toBe('completed');
    expect((await read(`Location/${moved.bed}`)).operationalStatus.code).toBe('U');
  });

  it('leaves exactly one current Encounter, at B, from A, in the ICU bed, which is now occupied', async () => {
    const current = (await encountersOf(moved.patient)).filter((e) => ['in-progress', 'arrived'].includes(e.status));
    expect(current).toHaveLength(1);
    expect(current[0].serviceProvider.reference).toBe(`Organization/${ids.B}`);
    // The origin is where the patient was: the Encounter's serviceProvider, department A1.
    expect(current[0].hospitalization.origin.reference).toBe(`Organization/${ids.A1}`);
    expect(current[0].location[0].location.reference).toBe(`Location/${ids.icuB}`);
    expect((await read(`Location/${ids.icuB}`)).operationalStatus.code).toBe('O');
  });

  it('records the transfer as a Task', async () => {
    const tasks = (await call(system, 'GET', `/Task?patient=Patient/${moved.patient}`)).body.entry.map((e: any) => e.resource);
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({ status: 'completed', code: { coding: [{ system: 'http://snomed.info/sct', code: '107724000' }] }, owner: { reference: `Organization/${ids.B}` } });
    expect(tasks[0].requester.reference).toBe(`Practitioner/${ids.drA}`);
  });

  it('writes an AuditEvent with action E and subtype transfer naming what changed', async () => {
    const events = (await call(system, 'GET', `/AuditEvent?entity=Patient/${moved.patient}&action=E`)).body.entry.map((e: any) => e.resource);
    const transfers = events.filter((a: any) => a.subtype.some((s: any) => s.code === 'transfer') && a.outcome === '0');
    expect(transfers).toHaveLength(1);
    const named = transfers[0].entity.map((e: any) => e.what?.reference);
    const started = response.entry[1].resource.id;
    expect(named).toEqual(expect.arrayContaining([`Encounter/${moved.encounter}`, `Encounter/${started}`, `Location/${ids.icuB}`, `Location/${moved.bed}`, `Task/${response.entry[0].resource.id}`]));
  });

  it('gives B\'s staff the patient\'s record, and A keeps it', async () => {
    expect((await call(drB, 'GET', `/Patient/${moved.patient}`)).status).toBe(200);
    expect((await call(drB, 'GET', `/Observation/${observation}`)).status).toBe(200);
    expect((await call(drA, 'GET', `/Patient/${moved.patient}`)).status).toBe(200);
  });

  it('keeps $bed-availability consistent with the beds', async () => {
    const res = await call(system, 'GET', `/Organization/${ids.B}/$bed-availability`);
    expect(res.status).toBe(200);
    const kinds = res.body.parameter[0].part.filter((p: any) => p.name === 'kind');
    const icu = kinds.find((k: any) => k.part.find((p: any) => p.name === 'code').valueString === 'icu');
    expect(icu.part.find((p: any) => p.name === 'free').valueInteger).toBe(0);
  });
});

describe('refusals leave nothing written', () => {
  let waiting: { patient: string; encounter: string; bed: string };

  beforeAll(async () => {
    waiting = await admittedAtA('Waiting');
  });

  const unchanged = async (): Promise<void> => {
    expect((await read(`Encounter/${waiting.encounter}`)).status).toBe('in-progress');
    expect((await encountersOf(waiting.patient)).length).toBe(1);
    expect((await read(`Location/${waiting.bed}`)).operationalStatus.code).toBe('O');
  };

  it('no free bed of the kind asked for: 409', async () => {
    const res = await transferOf(drA, waiting.patient, [to(ids.B), because('ICU'), { name: 'bedKind', valueString: 'ICU' }]);
    expect(res.status).toBe(409);
    expect(res.body.resourceType).toBe('OperationOutcome');
    await unchanged();
  });

  it('an occupied bed asked for by name: 409', async () => {
    const res = await transferOf(drA, waiting.patient, [to(ids.B), because('x'), { name: 'destinationLocation', valueReference: { reference: `Location/${ids.takenB}` } }]);
    expect(res.status).toBe(409);
    await unchanged();
  });

  it('a bed of another hospital: 422', async () => {
    const res = await transferOf(drA, waiting.patient, [to(ids.C), because('x'), { name: 'destinationLocation', valueReference: { reference: `Location/${ids.generalB}` } }]);
    expect(res.status).toBe(422);
    await unchanged();
  });

  it('the patient is not at the origin named: 409', async () => {
    const res = await transferOf(drA, waiting.patient, [to(ids.B), because('x'), { name: 'origin', valueReference: { reference: `Organization/${ids.C}` } }]);
    expect(res.status).toBe(409);
    await unchanged();
  });

  it('a caller who does not work for the origin hospital: 403', async () => {
    expect((await transferOf(drB, waiting.patient, [to(ids.B), because('x')])).status).toBe(403);
    const pharmacist = await user(`Practitioner/${ids.drA}`, 'pharmacist');
    expect((await transferOf(pharmacist, waiting.patient, [to(ids.B), because('x')])).status).toBe(403);
    await unchanged();
  });

  it('missing destination or reason: 400; a destination that does not exist: 422', async () => {
    expect((await transferOf(drA, waiting.patient, [because('x')])).status).toBe(400);
    expect((await transferOf(drA, waiting.patient, [to(ids.B)])).status).toBe(400);
    expect((await transferOf(drA, waiting.patient, [to('does-not-exist'), because('x')])).status).toBe(422);
    await unchanged();
  });
});

describe('the contract: only destination and reason', () => {
  it('moves the patient\'s current Encounter to the destination, without a bed', async () => {
    const patient = await admittedAtA('Plain');
    const res = await transferOf(system, patient.patient, [to(ids.C), because('Specialist care')]);
    expect(res.status).toBe(200);
    const current = (await encountersOf(patient.patient)).filter((e) => ['in-progress', 'arrived'].includes(e.status));
    expect(current.map((e) => e.serviceProvider.reference)).toEqual([`Organization/${ids.C}`]);
    expect((await read(`Encounter/${patient.encounter}`)).status).toBe('finished');
  });
});

describe('what the patient\'s data does not say', () => {
  const bare = (patient: string, extra: Record<string, unknown> = {}) =>
    create({ resourceType: 'Encounter', status: 'in-progress', class: { code: 'IMP' }, subject: { reference: `Patient/${patient}` }, ...extra });

  it('a backend service moves a patient whose current Encounter names no hospital; it ends, and the one at the destination is the only current one', async () => {
    const patient = await create({ resourceType: 'Patient', name: [{ family: 'Nowhere' }] });
    const encounter = await bare(patient);
    const res = await transferOf(system, patient, [to(ids.B), because('ambulance')]);
    expect(res.status).toBe(200);
    expect((await read(`Encounter/${encounter}`)).status).toBe('finished');
    const current = (await encountersOf(patient)).filter((e) => e.status === 'in-progress');
    expect(current.map((e) => e.serviceProvider.reference)).toEqual([`Organization/${ids.B}`]);
    expect(current[0].hospitalization.origin).toBeUndefined();
  });

  it('staff cannot move such a patient: they must belong to the origin, and nothing names it', async () => {
    const patient = await create({ resourceType: 'Patient', name: [{ family: 'Nowhere either' }] });
    await bare(patient);
    expect((await transferOf(drA, patient, [to(ids.B), because('x')])).status).toBe(409);
  });

  it('every current stay at the origin hospital ends (its departments included), not only the latest', async () => {
    const { patient, encounter } = await admittedAtA('Two stays');
    const second = await bare(patient, { serviceProvider: { reference: `Organization/${ids.A}` }, period: { start: '2026-12-02T08:00:00Z' } });
    const res = await transferOf(drA, patient, [to(ids.C), because('x')]);
    expect(res.status).toBe(200);
    expect((await read(`Encounter/${encounter}`)).status).toBe('finished');
    expect((await read(`Encounter/${second}`)).status).toBe('finished');
    const current = (await encountersOf(patient)).filter((e) => e.status === 'in-progress');
    expect(current.map((e) => e.serviceProvider.reference)).toEqual([`Organization/${ids.C}`]);
  });
});

describe('races', () => {
  it('two transfers racing for the last free bed: exactly one wins, the other leaves nothing', async () => {
    for (let round = 0; round < 4; round++) {
      const wardC = await ward(`Ward C ${round}`, ids.C);
      const last = await bed(`C last bed ${round}`, wardC, 'U', `KIND${round}`);
      const [first, second] = await Promise.all([admittedAtA(`Racer ${round}a`), admittedAtA(`Racer ${round}b`)]);
      const kind = { name: 'bedKind', valueString: `KIND${round}` };
      const results = await Promise.all([first, second].map((p) => transferOf(drA, p.patient, [to(ids.C), because('race'), kind])));
      expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
      const loser = results[0].status === 409 ? first : second;
      const winner = loser === first ? second : first;
      expect((await read(`Location/${last}`)).operationalStatus.code).toBe('O');
      const winners = (await encountersOf(winner.patient)).filter((e) => e.status === 'in-progress');
      expect(winners.map((e) => e.location?.[0]?.location.reference)).toEqual([`Location/${last}`]);
      expect((await read(`Encounter/${loser.encounter}`)).status).toBe('in-progress');
      expect(await encountersOf(loser.patient)).toHaveLength(1);
    }
  });

  it('the same patient transferred twice at once: one wins', async () => {
    const patient = await admittedAtA('Twice');
    const results = await Promise.all([ids.B, ids.C].map((org) => transferOf(drA, patient.patient, [to(org), because('twice')])));
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    const current = (await encountersOf(patient.patient)).filter((e) => e.status === 'in-progress');
    expect(current).toHaveLength(1);
  });
});
