import type { HumanName, Resource } from '@medplum/fhirtypes';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';
import { getSearch, resourceKey, storeOverHttp } from './http-search';
import { foldText, parameterValues } from './independent-evaluation';
import { loadHl7Examples, loadSynthea } from './search-fixtures';

/**
 * `_filter` (R4 search_filter.html) on HL7 examples and Synthea: string operators against
 * an oracle written here (each part of a name a value, case and accents folded); the
 * other operators against the plain query parameter they stand for; `and`, `or`, `not`
 * against the set operations on the plain searches' answers; chains; and the refusals.
 */

let server: TestServer;
let stored: Resource[] = [];

const ofType = (type: string): Resource[] => stored.filter((r) => r.resourceType === type);
const keys = (resources: Resource[]): string[] => resources.map(resourceKey).sort();

/** Every match of a search, page after page. */
async function all(path: string): Promise<string[]> {
  const found: Resource[] = [];
  let page = await getSearch(server, `${path}${path.includes('?') ? '&' : '?'}_count=500`);
  for (;;) {
    expect({ path, status: page.status, issue: page.status === 200 ? undefined : page.body?.issue }).toEqual({ path, status: 200, issue: undefined });
    found.push(...page.matches);
    const next = (page.body.link as { relation: string; url: string }[]).find((l) => l.relation === 'next');
    if (!next) return keys(found);
    page = await getSearch(server, next.url.slice(server.base.length + 1));
  }
}

const filtered = (type: string, expression: string): Promise<string[]> => all(`${type}?_filter=${encodeURIComponent(expression)}`);

/** Each string part of the parameter's values, folded. */
function parts(resource: Resource, code: string): string[] {
  return parameterValues(resource, code).flatMap(({ type, value }) => {
    if (type === 'HumanName') {
      const n = value as HumanName;
      return [n.family, ...(n.given ?? []), ...(n.prefix ?? []), ...(n.suffix ?? []), n.text].filter((s): s is string => !!s?.trim()).map(foldText);
    }
    return typeof value === 'string' ? [foldText(value)] : [];
  });
}

beforeAll(async () => {
  server = await startTestServer();
  stored = await storeOverHttp(server, [...loadHl7Examples(['Patient', 'Observation']), ...loadSynthea(['Patient', 'Observation'], 3)]);
  const extra: Resource[] = [
    { resourceType: 'Patient', id: 'flt-1', name: [{ family: 'Smith', given: ['Peter', 'James'] }], gender: 'male', birthDate: '2015-01-02' },
    { resourceType: 'Patient', id: 'flt-2', name: [{ family: 'Smithson', given: ['Petra'] }], gender: 'female', birthDate: '2010-05-06' },
    { resourceType: 'Patient', id: 'flt-3', name: [{ family: 'Jönes, Jr', given: ['Pétér'] }] },
  ];
  stored.push(...(await storeOverHttp(server, extra)));
}, 300_000);

afterAll(async () => {
  await server?.stop();
});

test('eq, sw, co and ew compare each part of a name, case and accents aside', async () => {
  const patients = ofType('Patient');
  const cases: [string, (parts: string[], v: string) => boolean][] = [
    ['eq', (ps, v) => ps.includes(v)],
    ['sw', (ps, v) => ps.some((p) => p.startsWith(v))],
    ['co', (ps, v) => ps.some((p) => p.includes(v))],
    ['ew', (ps, v) => ps.some((p) => p.endsWith(v))],
  ];
  for (const value of ['Smith', 'PETER', 'son', 'pete', 'jones, jr', 'ch']) {
    for (const [op, holds] of cases) {
      const expected = keys(patients.filter((p) => holds(parts(p, 'name'), foldText(value))));
      expect({ op, value, ids: await filtered('Patient', `name ${op} ${JSON.stringify(value)}`) }).toEqual({ op, value, ids: expected });
    }
  }
  expect(keys(patients.filter((p) => parts(p, 'name').includes('smith'))).length).toBeGreaterThan(0);
});

test('the other operators give what the query parameter they stand for gives', async () => {
  const pairs: [string, string, string][] = [
    ['Patient', 'gender eq female', 'gender=female'],
    ['Patient', 'birthdate ge 1990-01-01', 'birthdate=ge1990-01-01'],
    ['Patient', 'birthdate lt 1970', 'birthdate=lt1970'],
    ['Patient', 'birthdate ne 2015-01-02', 'birthdate=ne2015-01-02'],
    ['Patient', 'gender pr false', 'gender:missing=true'],
    ['Patient', '_id eq flt-2', '_id=flt-2'],
    ['Observation', 'code eq http://loinc.org|8302-2', 'code=http://loinc.org|8302-2'],
    ['Observation', 'value-quantity gt 150', 'value-quantity=gt150'],
    ['Observation', 'date sa 2015-06-01', 'date=sa2015-06-01'],
    ['Observation', 'date eb 2012', 'date=eb2012'],
    ['Observation', 'category in http://hl7.org/fhir/ValueSet/observation-category', 'category:in=http://hl7.org/fhir/ValueSet/observation-category'],
    ['Observation', 'category ni http://hl7.org/fhir/ValueSet/observation-category', 'category:not-in=http://hl7.org/fhir/ValueSet/observation-category'],
    ['Observation', 'status ss http://hl7.org/fhir/observation-status|final', 'status:below=http://hl7.org/fhir/observation-status|final'],
    ['Observation', 'status sb http://hl7.org/fhir/observation-status|corrected', 'status:above=http://hl7.org/fhir/observation-status|corrected'],
  ];
  for (const [type, expression, query] of pairs) {
    const plain = await all(`${type}?${query}`);
    expect({ expression, ids: await filtered(type, expression) }).toEqual({ expression, ids: plain });
  }
  // At least some of those select something and leave something out.
  expect((await all('Patient?gender=female')).length).toBeGreaterThan(0);
  expect((await all('Observation?value-quantity=gt150')).length).toBeGreaterThan(0);
});

test('ne on a token, re on a reference: not the value, and the reference', async () => {
  const patient = ofType('Observation').map((o) => (o as { subject?: { reference?: string } }).subject?.reference).find((r) => r?.startsWith('Patient/')) as string;
  expect(await filtered('Observation', `subject re ${patient}`)).toEqual(await all(`Observation?subject=${patient}`));
  const everyPatient = keys(ofType('Patient'));
  const male = await all('Patient?gender=male');
  expect(await filtered('Patient', 'gender ne male')).toEqual(everyPatient.filter((k) => !male.includes(k)));
});

test('and, or and not are the intersection, union and complement of their parts; and binds tighter than or', async () => {
  const female = await all('Patient?gender=female');
  const born = await all('Patient?birthdate=ge1980');
  const named = await all('Patient?name=smith');
  const everyPatient = keys(ofType('Patient'));
  const and = (a: string[], b: string[]): string[] => a.filter((k) => b.includes(k));
  const or = (a: string[], b: string[]): string[] => [...new Set([...a, ...b])].sort();
  expect(await filtered('Patient', 'gender eq female and birthdate ge 1980')).toEqual(and(female, born));
  expect(await filtered('Patient', 'gender eq female or birthdate ge 1980')).toEqual(or(female, born));
  expect(await filtered('Patient', 'not (gender eq female)')).toEqual(everyPatient.filter((k) => !female.includes(k)));
  expect(await filtered('Patient', 'name sw smith or gender eq female and birthdate ge 1980')).toEqual(or(named, and(female, born)));
  expect(await filtered('Patient', '(name sw smith or gender eq female) and birthdate ge 1980')).toEqual(and(or(named, female), born));
  expect(await filtered('Patient', 'not (name sw smith or gender eq female) and birthdate ge 1980')).toEqual(
    and(everyPatient.filter((k) => !or(named, female).includes(k)), born)
  );
  // Beside ordinary parameters: ANDed with them.
  expect(await all(`Patient?gender=female&_filter=${encodeURIComponent('birthdate ge 1980')}`)).toEqual(and(female, born));
});

test('po: the dates whose period overlaps the value\'s, neither after it nor before it', async () => {
  const every = keys(ofType('Observation'));
  for (const value of ['2015', '2012-06', '2019-01-01']) {
    const outside = new Set([...(await all(`Observation?date=sa${value}`)), ...(await all(`Observation?date=eb${value}`)), ...(await all('Observation?date:missing=true'))]);
    const expected = every.filter((k) => !outside.has(k));
    expect(expected.length).toBeGreaterThan(0);
    expect({ value, ids: await filtered('Observation', `date po ${value}`) }).toEqual({ value, ids: expected });
  }
});

test('a chain in the path searches the targets', async () => {
  const patients = ofType('Patient').filter((p) => parts(p, 'name').some((n) => n.includes('pet')));
  const refs = new Set(patients.map((p) => `Patient/${p.id}`));
  const expected = keys(ofType('Observation').filter((o) => refs.has((o as { subject?: { reference?: string } }).subject?.reference ?? '')));
  expect(expected.length).toBeGreaterThan(0);
  expect(await filtered('Observation', 'subject.name co "PET"')).toEqual(expected);
});

test('_filter works inside _has: one referring resource matches the whole expression', async () => {
  // The Patients that one Observation matching both refers to (two _has parameters would let two Observations match one each).
  const observations = new Set(await all('Observation?status=final&value-quantity=gt150'));
  const subjects = new Set(
    ofType('Observation')
      .filter((o) => observations.has(resourceKey(o)))
      .map((o) => (o as { subject?: { reference?: string } }).subject?.reference)
  );
  const expected = keys(ofType('Patient').filter((p) => subjects.has(`Patient/${p.id}`)));
  expect(expected.length).toBeGreaterThan(0);
  expect(await all(`Patient?_has:Observation:subject:_filter=${encodeURIComponent('status eq final and value-quantity gt 150')}`)).toEqual(expected);
});

test('what is not understood is a 400 naming _filter', async () => {
  for (const expression of ['name eq', 'name zz x', 'name gt x', 'unknown eq 1', '(name eq x', 'name eq x)', 'name eq x and', 'related[type eq x].target pr true', 'name po 2010', 'name eq "open', 'gender pr maybe', 'name:exact eq x', 'gender re Patient/1']) {
    const res = await fhirRequest('GET', `${server.base}/Patient?_filter=${encodeURIComponent(expression)}`);
    expect({ expression, status: res.status, expression_: res.body.issue?.[0]?.expression }).toEqual({ expression, status: 400, expression_: ['_filter'] });
  }
});
