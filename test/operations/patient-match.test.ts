import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * `Patient/$match` (R4 patient-operation-match): hand-made records of one person as two
 * hospitals registered her, and of people who only look like her, each expected grade
 * and score worked out by hand from the rules in operations/patient-match.ts.
 */
let server: TestServer;
const ids: Record<string, string> = {};
const HEALTH_ID = 'urn:oid:2.16.840.1.113883.2.4.6.3';
const GRADE = 'http://hl7.org/fhir/StructureDefinition/match-grade';

const anna = {
  resourceType: 'Patient',
  identifier: [{ system: HEALTH_ID, value: 'H-100' }],
  name: [{ family: 'Müller', given: ['Anna'] }],
  birthDate: '1980-04-02',
  gender: 'female',
  telecom: [{ system: 'phone', value: '+49 30 1234567' }],
  address: [{ line: ['Schönhauser Allee 1'], postalCode: '10115', city: 'Berlin' }],
};

async function create(resource: Record<string, unknown>): Promise<string> {
  const res = await fhirRequest('POST', `${server.base}/Patient`, { body: resource });
  expect(res.status).toBe(201);
  return res.body.id;
}

beforeAll(async () => {
  server = await startTestServer();
  ids.registered = await create(anna);
  // The same woman at another hospital: no health ID, her name without the umlaut, another phone format.
  ids.elsewhere = await create({ resourceType: 'Patient', name: [{ family: 'MULLER', given: ['anna', 'Maria'] }], birthDate: '1980-04-02', gender: 'female', telecom: [{ system: 'phone', value: '+49-30-123 4567' }] });
  // Only the year of birth is known.
  ids.yearOnly = await create({ resourceType: 'Patient', name: [{ family: 'Muller', given: ['Anna'] }], birthDate: '1980', gender: 'female' });
  // Her brother: same family name and birth date, a man.
  ids.brother = await create({ resourceType: 'Patient', name: [{ family: 'Müller', given: ['Bernd'] }], birthDate: '1980-04-02', gender: 'male' });
  // Her health ID mistyped onto someone born in 1955.
  ids.mistyped = await create({ resourceType: 'Patient', identifier: [{ system: HEALTH_ID, value: 'H-100' }], name: [{ family: 'Müller', given: ['Anna'] }], birthDate: '1955-01-01', gender: 'female' });
  ids.stranger = await create({ resourceType: 'Patient', name: [{ family: 'Schmidt', given: ['Jonas'] }], birthDate: '1990-01-01', gender: 'male' });
}, 60000);

afterAll(async () => {
  await server?.stop();
});

async function match(resource: Record<string, unknown>, extra: Record<string, unknown>[] = [], token?: string) {
  return fhirRequest('POST', `${server.base}/Patient/$match`, {
    body: { resourceType: 'Parameters', parameter: [{ name: 'resource', resource }, ...extra] },
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
}

const graded = (bundle: any): [string, string, number][] =>
  (bundle.entry ?? []).filter((e: any) => e.search.mode === 'match').map((e: any) => [e.resource.id, e.search.extension.find((x: any) => x.url === GRADE).valueCode, e.search.score]);

test('each candidate graded and scored, best first: the shared health ID certain, the other hospital\'s record probable, partial or conflicting ones possible, the brother and strangers not at all', async () => {
  const res = await match({ resourceType: 'Patient', identifier: anna.identifier, name: anna.name, birthDate: anna.birthDate, gender: anna.gender });
  expect(res.status).toBe(200);
  expect(res.body.type).toBe('searchset');
  expect(graded(res.body)).toEqual([
    [ids.registered, 'certain', 1],
    // family 0.3 + given 0.2 + birth date 0.3 + gender 0.1
    [ids.elsewhere, 'probable', 0.9],
    // family 0.3 + given 0.2 + the year agreeing 0.15 + gender 0.1
    [ids.yearOnly, 'possible', 0.75],
    // 0.3 + 0.2 + 0.1, less 0.3 for the birth date that disagrees: kept as possible only for the shared identifier
    [ids.mistyped, 'possible', 0.3],
  ]);
  expect(res.body.total).toBe(4);
  // The brother: family 0.3 + birth date 0.3 − 0.3 for the gender: 0.3, below possible.
});

test('phone and address count too, compared as digits and case- and accent-insensitively', async () => {
  const res = await match({ resourceType: 'Patient', name: [{ family: 'Muller', given: ['Anna'] }], telecom: [{ system: 'phone', value: '+49 (30) 123-4567' }], address: [{ line: ['SCHONHAUSER ALLEE 1'], postalCode: '10115' }] });
  expect(graded(res.body)).toEqual([
    // family 0.3 + given 0.2 + phone 0.05 + address 0.05
    [ids.registered, 'possible', 0.6],
    // family 0.3 + given 0.2 + phone 0.05
    [ids.elsewhere, 'possible', 0.55],
    // family and given alone, 0.5 each: by id (time-ordered ids: the one registered first)
    [ids.yearOnly, 'possible', 0.5],
    [ids.mistyped, 'possible', 0.5],
  ]);
});

test('onlyCertainMatches returns the one certain match, and none (with an OperationOutcome) when several are certain; count caps the entries', async () => {
  const only = await match(anna, [{ name: 'onlyCertainMatches', valueBoolean: true }]);
  expect(graded(only.body)).toEqual([[ids.registered, 'certain', 1]]);
  const capped = await match(anna, [{ name: 'count', valueInteger: 2 }]);
  expect(graded(capped.body).map((g) => g[0])).toEqual([ids.registered, ids.elsewhere]);

  const twin = await create({ ...anna });
  const ambiguous = await match(anna, [{ name: 'onlyCertainMatches', valueBoolean: true }]);
  expect(graded(ambiguous.body)).toEqual([]);
  expect(ambiguous.body.entry.find((e: any) => e.search.mode === 'outcome').resource.issue[0].code).toBe('multiple-matches');
  expect((await fhirRequest('DELETE', `${server.base}/Patient/${twin}`)).status).toBe(204);
});

test("candidates are only patients the caller may see: a patient's own token finds only their own record", async () => {
  const token = await mintToken(server, { scope: 'patient/*.rs', userId: 'u-match', fhirUser: `Patient/${ids.elsewhere}`, role: 'patient', patient: ids.elsewhere });
  const res = await match(anna, [], token);
  expect(res.status).toBe(200);
  expect(graded(res.body)).toEqual([[ids.elsewhere, 'probable', 0.95]]);
});

test('a missing, foreign, invalid or empty resource is a 400 OperationOutcome', async () => {
  for (const body of [
    { resourceType: 'Parameters', parameter: [] },
    { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: { resourceType: 'Practitioner', name: [{ family: 'Müller' }] } }] },
    { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: { resourceType: 'Patient', gender: 'sometimes', name: [{ family: 'Müller' }] } }] },
    { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: { resourceType: 'Patient', gender: 'female' } }] },
  ]) {
    const res = await fhirRequest('POST', `${server.base}/Patient/$match`, { body });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
  }
});
