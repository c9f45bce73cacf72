import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * $bed-availability over a small health system:
 *  - Berlin General (main building in Berlin) with its department Intensive Care, which
 *    has a sub-department Step-down; a general ward (ward → room → bed and ward → bed) in
 *    beds of every state, an ICU ward managed by the department, a step-down bed of its own;
 *  - Munich Central (ward in Munich) with a Surgery department;
 *  - Large Hospital (ward in Hamburg) with more beds than one page of a search holds;
 *  - Closed Clinic with only an inactive bed, and an insurer without Locations.
 * Every expectation is computed in this file from the Locations as created (and updated),
 * with each bed's kind and organisations written down where it is created.
 */
let server: TestServer;
let admin: string;
const ids: Record<string, string> = {};

const PHYSICAL_TYPE = 'http://terminology.hl7.org/CodeSystem/location-physical-type';
const BED_STATUS = 'http://terminology.hl7.org/CodeSystem/v2-0116';
const ROLE_CODE = 'http://terminology.hl7.org/CodeSystem/v3-RoleCode';
const BERLIN = { latitude: 52.52, longitude: 13.405 };
const MUNICH = { latitude: 48.1374, longitude: 11.5755 };
const HAMBURG = { latitude: 53.5511, longitude: 9.9937 };
const POTSDAM = '52.3906|13.0645';
const LARGE_WARD_BEDS = 1050;

interface CreatedBed {
  id: string;
  /** Keys (in `ids`) of the organisations whose $bed-availability counts this bed. */
  organizations: string[];
  kind: string;
  resource: Record<string, any>;
}
const beds: CreatedBed[] = [];

const call = (token: string, path: string, method = 'GET', body?: unknown) =>
  fhirRequest(method, `${server.base}${path}`, { body, headers: { Authorization: `Bearer ${token}` } });
const create = async (resource: Record<string, unknown>): Promise<string> => {
  const res = await call(admin, `/${resource.resourceType}`, 'POST', resource);
  expect(res.status).toBe(201);
  return res.body.id;
};
const ref = (type: string, key: string) => ({ reference: `${type}/${ids[key]}` });
const organization = (name: string, partOf?: string) =>
  create({ resourceType: 'Organization', name, ...(partOf ? { partOf: ref('Organization', partOf) } : {}) });
const physical = (code: string) => ({ coding: [{ system: PHYSICAL_TYPE, code }] });
const location = (name: string, code: string, extra: Record<string, unknown>) =>
  create({ resourceType: 'Location', name, physicalType: physical(code), ...extra });
const status = (code: string) => ({ system: BED_STATUS, code });
const icuType = [{ coding: [{ system: ROLE_CODE, code: 'ICU', display: 'Intensive care unit' }] }];

async function bed(name: string, organizations: string[], kind: string, extra: Record<string, unknown>): Promise<void> {
  const resource = { resourceType: 'Location', name, physicalType: physical('bd'), ...extra };
  const id = await create(resource);
  beds.push({ id, organizations, kind, resource: { ...resource, id } });
}

/** What the operation reports for one hospital, in a form easy to compare. */
interface Figures {
  organization: string;
  free: number;
  total: number;
  kinds: Record<string, { free: number; total: number }>;
  distance?: number;
}

/** The figures of an organisation, counted here from the beds as created: inactive beds are no capacity, free is active-or-no-status and U-or-no-bed-status. */
function expected(key: string, kind?: string): Figures {
  const kinds: Record<string, { free: number; total: number }> = kind ? { [kind]: { free: 0, total: 0 } } : {};
  for (const b of beds) {
    if (!b.organizations.includes(key) || b.resource.status === 'inactive' || (kind && b.kind !== kind)) continue;
    const count = (kinds[b.kind] ??= { free: 0, total: 0 });
    count.total++;
    const available = (b.resource.status ?? 'active') === 'active';
    const unoccupied = b.resource.operationalStatus === undefined || b.resource.operationalStatus.code === 'U';
    if (available && unoccupied) count.free++;
  }
  const all = Object.values(kinds);
  return {
    organization: `Organization/${ids[key]}`,
    free: all.reduce((n, k) => n + k.free, 0),
    total: all.reduce((n, k) => n + k.total, 0),
    kinds,
  };
}

const part = (p: any, name: string): any => p.part.find((x: any) => x.name === name);

function figures(hospital: any): Figures {
  expect(hospital.name).toBe('hospital');
  const result: Figures = {
    organization: part(hospital, 'organization').valueReference.reference,
    free: part(hospital, 'free').valueInteger,
    total: part(hospital, 'total').valueInteger,
    kinds: Object.fromEntries(
      hospital.part
        .filter((x: any) => x.name === 'kind')
        .map((k: any) => [part(k, 'code').valueString, { free: part(k, 'free').valueInteger, total: part(k, 'total').valueInteger }])
    ),
  };
  const distance = part(hospital, 'distance');
  if (distance) result.distance = distance.valueQuantity.value;
  return result;
}

async function availability(token: string, path: string): Promise<Figures[]> {
  const res = await call(token, path);
  expect(res.status).toBe(200);
  expect(res.body.resourceType).toBe('Parameters');
  return (res.body.parameter ?? []).map(figures);
}

async function setOperationalStatus(name: string, change: Record<string, unknown>): Promise<void> {
  const b = beds.find((x) => x.resource.name === name) as CreatedBed;
  const updated = { ...b.resource, ...change };
  const res = await call(admin, `/Location/${b.id}`, 'PUT', updated);
  expect(res.status).toBe(200);
  b.resource = updated;
}

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  admin = await mintToken(server, { scope: 'system/*.*' });
  ids.berlin = await organization('Berlin General Hospital');
  ids.berlinIcu = await organization('Berlin Intensive Care', 'berlin');
  ids.berlinStepDown = await organization('Berlin Step-down Unit', 'berlinIcu');
  ids.munich = await organization('Munich Central Hospital');
  ids.munichSurgery = await organization('Munich Surgery', 'munich');
  ids.large = await organization('Large Hospital');
  ids.closed = await organization('Closed Clinic');
  ids.insurer = await organization('Insurer');

  // Berlin: building → general ward → room → beds, and beds right in the ward.
  ids.building = await location('Main building', 'bu', { managingOrganization: ref('Organization', 'berlin'), position: BERLIN });
  ids.ward1 = await location('Ward 1', 'wa', { partOf: ref('Location', 'building') });
  ids.room1 = await location('Room 1.1', 'ro', { partOf: ref('Location', 'ward1') });
  const berlinOnly = ['berlin'];
  await bed('b1', berlinOnly, 'general', { partOf: ref('Location', 'room1'), status: 'active', operationalStatus: status('U') });
  await bed('b2', berlinOnly, 'general', { partOf: ref('Location', 'room1'), operationalStatus: status('O') });
  // No bed status, and a physicalType coding without system: a free bed all the same.
  await bed('b3', berlinOnly, 'general', { partOf: ref('Location', 'room1'), physicalType: { coding: [{ code: 'bd' }] } });
  await bed('b4', berlinOnly, 'general', { partOf: ref('Location', 'ward1'), operationalStatus: status('C') });
  await bed('b5', berlinOnly, 'general', { partOf: ref('Location', 'ward1'), status: 'inactive', operationalStatus: status('U') });
  await bed('b6', berlinOnly, 'general', { partOf: ref('Location', 'ward1'), status: 'suspended', operationalStatus: status('U') });
  await bed('b7', berlinOnly, 'general', { partOf: ref('Location', 'ward1'), operationalStatus: status('H') });
  // `bd` of another code system: not a bed.
  await create({ resourceType: 'Location', name: 'not a bed', partOf: ref('Location', 'ward1'), physicalType: { coding: [{ system: 'http://example.org/x', code: 'bd' }] }, operationalStatus: status('U') });

  // Berlin ICU: a ward managed by the department, typed ICU, with a room; a step-down bed of the sub-department.
  ids.icuWard = await location('ICU', 'wa', { partOf: ref('Location', 'building'), managingOrganization: ref('Organization', 'berlinIcu'), type: icuType });
  ids.icuRoom = await location('ICU room 1', 'ro', { partOf: ref('Location', 'icuWard') });
  const icu = ['berlin', 'berlinIcu'];
  await bed('b8', icu, 'icu', { partOf: ref('Location', 'icuRoom'), operationalStatus: status('U') });
  await bed('b9', icu, 'icu', { partOf: ref('Location', 'icuRoom'), operationalStatus: status('O') });
  await bed('b10', icu, 'icu', { partOf: ref('Location', 'icuWard'), type: [{ coding: [{ code: 'icu' }] }] });
  await bed('b11', icu, 'icu', { partOf: ref('Location', 'icuWard'), operationalStatus: status('I') });
  await bed('b12', [...icu, 'berlinStepDown'], 'icu', { managingOrganization: ref('Organization', 'berlinStepDown'), type: icuType, operationalStatus: status('U') });

  // Munich: a surgery ward of the department, an ICU ward typed by text only.
  ids.munichWard = await location('Surgery ward', 'wa', { managingOrganization: ref('Organization', 'munichSurgery'), position: MUNICH });
  const surgery = ['munich', 'munichSurgery'];
  await bed('m1', surgery, 'general', { partOf: ref('Location', 'munichWard'), operationalStatus: status('U') });
  await bed('m2', surgery, 'general', { partOf: ref('Location', 'munichWard'), operationalStatus: status('O') });
  ids.munichIcu = await location('Munich ICU', 'wa', { managingOrganization: ref('Organization', 'munich'), type: [{ text: 'ICU' }] });
  await bed('m3', ['munich'], 'icu', { partOf: ref('Location', 'munichIcu'), operationalStatus: status('O') });

  await bed('c1', ['closed'], 'general', { managingOrganization: ref('Organization', 'closed'), status: 'inactive' });

  // Large Hospital: more beds in one ward than one page of the searches behind the operation.
  ids.largeWard = await location('Big ward', 'wa', { managingOrganization: ref('Organization', 'large'), position: HAMBURG });
  const largeBeds = Array.from({ length: LARGE_WARD_BEDS }, (_, i) => ({
    resourceType: 'Location',
    name: `L${i}`,
    physicalType: physical('bd'),
    partOf: ref('Location', 'largeWard'),
    operationalStatus: status(i % 3 === 0 ? 'O' : 'U'),
  }));
  const transaction = await call(admin, '', 'POST', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: largeBeds.map((resource) => ({ request: { method: 'POST', url: 'Location' }, resource })),
  });
  expect(transaction.status).toBe(200);
  transaction.body.entry.forEach((entry: any, i: number) => {
    const id = /Location\/([^/]+)/.exec(entry.response.location)?.[1] as string;
    beds.push({ id, organizations: ['large'], kind: 'general', resource: { ...largeBeds[i], id } });
  });

  ids.drBerlin = await create({ resourceType: 'Practitioner', name: [{ family: 'Berliner' }] });
  await create({ resourceType: 'PractitionerRole', practitioner: ref('Practitioner', 'drBerlin'), organization: ref('Organization', 'berlin') });
}, 120000);

afterAll(async () => {
  await server?.stop();
});

describe('Organization/[id]/$bed-availability', () => {
  it('counts the free and total beds of a hospital and its departments, by kind, as the Locations say', async () => {
    for (const key of ['berlin', 'munich', 'large']) {
      expect(await availability(admin, `/Organization/${ids[key]}/$bed-availability`)).toEqual([expected(key)]);
    }
    // The figures written out once, so that a mistake shared by the code and `expected` shows too.
    expect(expected('berlin')).toMatchObject({ free: 5, total: 11, kinds: { general: { free: 2, total: 6 }, icu: { free: 3, total: 5 } } });
    expect(expected('large')).toMatchObject({ free: 700, total: LARGE_WARD_BEDS });
  });

  it('counts a department with its own sub-departments only', async () => {
    for (const key of ['berlinIcu', 'berlinStepDown', 'munichSurgery']) {
      expect(await availability(admin, `/Organization/${ids[key]}/$bed-availability`)).toEqual([expected(key)]);
    }
    expect(expected('berlinStepDown')).toMatchObject({ free: 1, total: 1 });
  });

  it('reports zero for an organisation without beds in service', async () => {
    for (const key of ['insurer', 'closed']) {
      expect(await availability(admin, `/Organization/${ids[key]}/$bed-availability`)).toEqual([
        { organization: `Organization/${ids[key]}`, free: 0, total: 0, kinds: {} },
      ]);
    }
  });

  it('restricts the figures to one kind, matched without regard to case, and lists it even at zero', async () => {
    expect(await availability(admin, `/Organization/${ids.berlin}/$bed-availability?kind=ICU`)).toEqual([expected('berlin', 'icu')]);
    expect(await availability(admin, `/Organization/${ids.munich}/$bed-availability?kind=icu`)).toEqual([expected('munich', 'icu')]);
    expect(await availability(admin, `/Organization/${ids.berlin}/$bed-availability?kind=Maternity`)).toEqual([
      { organization: `Organization/${ids.berlin}`, free: 0, total: 0, kinds: { maternity: { free: 0, total: 0 } } },
    ]);
  });

  it('is 404 for an unknown organisation and 400 for a near filter, which only the type level has', async () => {
    const unknown = await call(admin, '/Organization/no-such-org/$bed-availability');
    expect(unknown.status).toBe(404);
    expect(unknown.body.resourceType).toBe('OperationOutcome');
    const near = await call(admin, `/Organization/${ids.berlin}/$bed-availability?near=${POTSDAM}|50`);
    expect(near.status).toBe(400);
    expect(near.body.resourceType).toBe('OperationOutcome');
  });
});

describe('Organization/$bed-availability', () => {
  it('lists each top-level organisation with beds in service, departments rolled up, by name', async () => {
    expect(await availability(admin, '/Organization/$bed-availability')).toEqual([expected('berlin'), expected('large'), expected('munich')]);
  });

  it('with kind, lists only the hospitals that have beds of that kind', async () => {
    expect(await availability(admin, '/Organization/$bed-availability?kind=ICU')).toEqual([expected('berlin', 'icu'), expected('munich', 'icu')]);
    const none = await call(admin, '/Organization/$bed-availability?kind=maternity');
    expect(none.status).toBe(200);
    expect(none.body).toEqual({ resourceType: 'Parameters' });
  });

  it('with near, lists only the hospitals within the distance, nearest first, with the distance in km', async () => {
    const fromPotsdam = await availability(admin, `/Organization/$bed-availability?near=${POTSDAM}|50|km`);
    expect(fromPotsdam.map((h) => h.organization)).toEqual([`Organization/${ids.berlin}`]);
    // Potsdam to Berlin Mitte is about 27 km as the crow flies.
    expect(fromPotsdam[0].distance).toBeGreaterThan(26.5);
    expect(fromPotsdam[0].distance).toBeLessThan(28);
    expect(fromPotsdam[0]).toEqual({ ...expected('berlin'), distance: fromPotsdam[0].distance });

    expect(await availability(admin, `/Organization/$bed-availability?near=${POTSDAM}|20`)).toEqual([]);
    // 20 international miles are 32 km.
    expect((await availability(admin, `/Organization/$bed-availability?near=${POTSDAM}|20|[mi_i]`)).map((h) => h.organization)).toEqual([`Organization/${ids.berlin}`]);
    // Without a distance: 5 km.
    expect(await availability(admin, `/Organization/$bed-availability?near=${POTSDAM}`)).toEqual([]);

    const fromMunich = await availability(admin, `/Organization/$bed-availability?near=${MUNICH.latitude}|${MUNICH.longitude}|1000`);
    expect(fromMunich.map((h) => h.organization)).toEqual(['munich', 'berlin', 'large'].map((k) => `Organization/${ids[k]}`));
    expect(fromMunich.map((h) => h.distance)).toEqual([0, expect.any(Number), expect.any(Number)]);
    // Munich–Berlin about 504 km, Munich–Hamburg about 612 km.
    expect(fromMunich[1].distance).toBeGreaterThan(495);
    expect(fromMunich[1].distance).toBeLessThan(512);
    expect(fromMunich[2].distance).toBeGreaterThan(600);
    expect(fromMunich[2].distance).toBeLessThan(620);
    expect(fromMunich.map(({ distance: _d, ...rest }) => rest)).toEqual([expected('munich'), expected('berlin'), expected('large')]);
  });

  it('refuses a malformed near with a 400 OperationOutcome', async () => {
    for (const near of ['52.4', '95|13|10', '52.4|13|ten', '52.4|13|10|furlong']) {
      const res = await call(admin, `/Organization/$bed-availability?near=${encodeURIComponent(near)}`);
      expect(res.status).toBe(400);
      expect(res.body.resourceType).toBe('OperationOutcome');
    }
  });
});

describe('the figures follow the Locations', () => {
  it('at once, after a bed status changes or a bed goes out of service', async () => {
    const before = expected('berlin');
    await setOperationalStatus('b1', { operationalStatus: status('O') });
    await setOperationalStatus('m3', { operationalStatus: status('U') });
    await setOperationalStatus('b2', { status: 'inactive' });
    const after = expected('berlin');
    expect(after.free).toBe(before.free - 1);
    expect(after.total).toBe(before.total - 1);
    expect(await availability(admin, `/Organization/${ids.berlin}/$bed-availability`)).toEqual([after]);
    expect(await availability(admin, `/Organization/${ids.munich}/$bed-availability?kind=ICU`)).toEqual([{ ...expected('munich', 'icu'), free: 1, total: 1 }]);
    expect(await availability(admin, '/Organization/$bed-availability')).toEqual([expected('berlin'), expected('large'), expected('munich')]);
  });

  it('when a bed is deleted', async () => {
    const b = beds.find((x) => x.resource.name === 'm1') as CreatedBed;
    expect((await call(admin, `/Location/${b.id}`, 'DELETE')).status).toBeLessThan(300);
    beds.splice(beds.indexOf(b), 1);
    expect(await availability(admin, `/Organization/${ids.munichSurgery}/$bed-availability`)).toEqual([expected('munichSurgery')]);
    expect(expected('munichSurgery')).toMatchObject({ free: 0, total: 1 });
  });
});

describe('who may ask', () => {
  it('a practitioner sees the same figures as a backend service (Locations and Organizations are shared data)', async () => {
    const token = await mintToken(server, { scope: 'user/*.cruds', userId: 'u-dr-berlin', fhirUser: `Practitioner/${ids.drBerlin}`, role: 'practitioner' });
    expect(await availability(token, `/Organization/${ids.munich}/$bed-availability`)).toEqual([expected('munich')]);
    expect(await availability(token, '/Organization/$bed-availability')).toEqual([expected('berlin'), expected('large'), expected('munich')]);
  });

  it('an insurer, whose role may not read Locations, is refused', async () => {
    const agent = await create({ resourceType: 'Practitioner', name: [{ family: 'Claims' }] });
    const token = await mintToken(server, { scope: 'user/*.cruds', userId: 'u-agent', fhirUser: `Practitioner/${agent}`, role: 'insurer' });
    const res = await call(token, `/Organization/${ids.berlin}/$bed-availability`);
    expect(res.status).toBe(403);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});
