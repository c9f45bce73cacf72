import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../support/test-server';
import { getSearch, postSearch, queryString, resourceKey, sortedKeys, storeOverHttp, type SearchPage } from './http-search';
import { parameterValues } from './independent-evaluation';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';

/**
 * R4 search.html#errors: parameters the server does not know or support are ignored and
 * reported (here as a warning OperationOutcome entry with search.mode=outcome), or a 400
 * with `Prefer: handling=strict`; values it cannot read are a 400 whatever the handling,
 * since ignoring them would silently widen the result. Over HTTP, GET and POST _search.
 */
let server: TestServer;
let stored: Resource[];

/** Patients whose gender the official expression reads as `gender`, worked out from the fixtures. */
const patientsOfGender = (gender: string): string[] =>
  sortedKeys(stored.filter((r) => r.resourceType === 'Patient' && parameterValues(r, 'gender').some((v) => v.value === gender)));

beforeAll(async () => {
  server = await startTestServer();
  const resources = uniqueById([...loadHl7Examples(['Patient', 'RiskAssessment']), ...loadSynthea(['Patient'], 6)]);
  stored = await storeOverHttp(server, resources);
  expect(stored.length).toBeGreaterThan(resources.length * 0.9);
});

afterAll(async () => {
  await server?.stop();
});

/** Unknown parameters, parameters R4 defines but this server does not search on, and unknown sort keys. */
const IGNORABLE: [string, string][] = [
  ['foo', 'bar'],
  ['_query', 'cancer'],
  ['_content', 'cancer'],
  ['nonsense.name', 'x'],
  ['_has:Observation:patient:nonsense', 'x'],
  ['_sort', 'nonsense'],
];

const issuesNaming = (outcomes: OperationOutcome[], name: string): unknown[] =>
  outcomes.flatMap((o) => o.issue ?? []).filter((i) => JSON.stringify([i.diagnostics, i.expression]).includes(name));

function expectBadRequestNaming(page: SearchPage, name: string, what: string): void {
  expect({ what, status: page.status, type: page.body?.resourceType }).toEqual({ what, status: 400, type: 'OperationOutcome' });
  const issue = (page.body as OperationOutcome).issue?.[0];
  expect({ what, severity: issue?.severity }).toEqual({ what, severity: 'error' });
  expect({ what, named: JSON.stringify(page.body).includes(name) }).toEqual({ what, named: true });
}

describe('unknown and unsupported parameters', () => {
  test.each(IGNORABLE)('%s=%s is ignored by default, with a warning outcome entry naming it, over GET and POST', async (name, value) => {
    const expected = patientsOfGender('female');
    expect(expected.length).toBeGreaterThan(1);
    const params: [string, string][] = [[name, value], ['gender', 'female'], ['_count', '1000']];
    for (const page of [await getSearch(server, `Patient?${queryString(params)}`), await postSearch(server, 'Patient', params)]) {
      expect(page.status).toBe(200);
      expect(sortedKeys(page.matches)).toEqual(expected);
      expect(page.outcomes).toHaveLength(1);
      expect(page.outcomes[0].resourceType).toBe('OperationOutcome');
      const named = issuesNaming(page.outcomes, name.split('.')[0].replace(/^_has:.*/, '_has'));
      expect(named).toEqual([expect.objectContaining({ severity: 'warning' })]);
      // The outcome is not a match: it carries no fullUrl of a stored resource.
      expect(page.entries.filter((e) => e.search?.mode === 'outcome').every((e) => e.resource?.resourceType === 'OperationOutcome')).toBe(true);
    }
  });

  test.each(IGNORABLE)('%s=%s is a 400 OperationOutcome naming it with Prefer: handling=strict, over GET and POST', async (name, value) => {
    const params: [string, string][] = [[name, value], ['gender', 'female']];
    const strict = { Prefer: 'handling=strict' };
    const key = name.split('.')[0].replace(/^_has:.*/, '_has');
    expectBadRequestNaming(await getSearch(server, `Patient?${queryString(params)}`, strict), key, `GET ${name}`);
    expectBadRequestNaming(await postSearch(server, 'Patient', params, strict), key, `POST ${name}`);
  });

  test.each(IGNORABLE.filter(([name]) => name !== '_sort'))(
    '%s=%s, ignored, is left out of the self and next links, which keep the parameters the search used',
    async (name, value) => {
      const params: [string, string][] = [[name, value], ['gender', 'female'], ['_count', '1']];
      const page = await getSearch(server, `Patient?${queryString(params)}`);
      const links = new Map(((page.body as Bundle).link ?? []).map((l) => [l.relation, new URL(l.url).searchParams]));
      for (const relation of ['self', 'next']) {
        const used = links.get(relation) as URLSearchParams;
        expect({ relation, ignored: used.getAll(name), gender: used.get('gender') }).toEqual({ relation, ignored: [], gender: 'female' });
      }
      // What the self link names finds the same first page, now without a warning.
      const self = links.get('self') as URLSearchParams;
      const again = await getSearch(server, `Patient?${self}`);
      expect({ matches: sortedKeys(again.matches), outcomes: again.outcomes.length }).toEqual({ matches: sortedKeys(page.matches), outcomes: 0 });
    }
  );

  test('a repeated parameter loses only the values that were ignored: _include keeps the ones it used', async () => {
    const page = await getSearch(server, 'RiskAssessment?_include=RiskAssessment:subject&_include=RiskAssessment:nonsense');
    expect(page.outcomes).toHaveLength(1);
    const self = new URL(((page.body as Bundle).link ?? []).find((l) => l.relation === 'self')?.url as string).searchParams;
    expect(self.getAll('_include')).toEqual(['RiskAssessment:subject']);
  });

  test('Prefer: handling=lenient is the default, and every ignored parameter gets its own warning', async () => {
    const params: [string, string][] = [['foo', '1'], ['bar', '2'], ['gender', 'male'], ['_count', '1000']];
    const lenient = await getSearch(server, `Patient?${queryString(params)}`, { Prefer: 'handling=lenient' });
    const plain = await getSearch(server, `Patient?${queryString(params)}`);
    for (const page of [lenient, plain]) {
      expect(page.status).toBe(200);
      expect(sortedKeys(page.matches)).toEqual(patientsOfGender('male'));
      expect(issuesNaming(page.outcomes, 'foo')).toHaveLength(1);
      expect(issuesNaming(page.outcomes, 'bar')).toHaveLength(1);
    }
  });

  test('a search with only known parameters carries no outcome entry, strict or not', async () => {
    for (const headers of [{}, { Prefer: 'handling=strict' }] as Record<string, string>[]) {
      const page = await getSearch(server, 'Patient?gender=female&_count=1000', headers);
      expect(page.status).toBe(200);
      expect(page.outcomes).toEqual([]);
      expect(sortedKeys(page.matches)).toEqual(patientsOfGender('female'));
    }
  });
});

describe('malformed values', () => {
  /** [type, parameter, value]: each unreadable, whatever the handling. */
  const MALFORMED: [string, string, string][] = [
    ['Patient', 'birthdate', '2020-13-45'],
    ['Patient', 'birthdate', '2021-02-29'],
    ['Patient', 'birthdate', 'xx2020'],
    ['Patient', 'birthdate', 'ge'],
    ['Patient', 'birthdate', '2020-01-01T10:00:00+25:00'],
    ['Patient', '_lastUpdated', '2020-13-45'],
    ['Patient', '_lastUpdated', 'on2020'],
    ['RiskAssessment', 'date', 'eq2020-1-1'],
    ['RiskAssessment', 'probability', 'abc'],
    ['RiskAssessment', 'probability', 'xx5'],
    ['RiskAssessment', 'probability', '1.2.3'],
    ['RiskAssessment', 'probability', '5e'],
    ['Observation', 'value-quantity', 'zz5||mg'],
    ['Observation', 'value-quantity', 'five||mg'],
    ['Observation', 'code-value-quantity', 'http://loinc.org|8867-4$ab5'],
    ['Observation', 'code-value-quantity', 'http://loinc.org|8867-4'],
    ['Location', 'near', '91|0|5|km'],
    ['Location', 'near', '10|20|5|parsec'],
    ['Patient', 'gender:missing', 'maybe'],
    ['Patient', 'name:nonsense', 'x'],
    ['Patient', 'birthdate:exact', '2020'],
    ['Patient', 'general-practitioner:NotAType', 'x'],
    ['Patient', 'identifier:of-type', 'only|two'],
    ['Patient', '_count', 'ten'],
    ['Patient', '_total', 'some'],
    ['Patient', '_summary', 'maybe'],
    ['Patient', '_include', 'Patient'],
  ];

  test.each(MALFORMED)('%s?%s=%s is a 400 OperationOutcome naming the parameter, lenient or strict, GET or POST', async (type, name, value) => {
    const code = name.split(':')[0];
    const params: [string, string][] = [[name, value], ['_id', 'x']];
    for (const headers of [{}, { Prefer: 'handling=lenient' }, { Prefer: 'handling=strict' }] as Record<string, string>[]) {
      const what = `${JSON.stringify(headers)} ${type}?${name}=${value}`;
      expectBadRequestNaming(await getSearch(server, `${type}?${queryString(params)}`, headers), code, `GET ${what}`);
      expectBadRequestNaming(await postSearch(server, type, params, headers), code, `POST ${what}`);
    }
  });

  test('a malformed value is a 400 even next to an unknown parameter that lenient handling would ignore', async () => {
    const page = await getSearch(server, `Patient?${queryString([['foo', 'bar'], ['birthdate', '2020-13-45']])}`);
    expectBadRequestNaming(page, 'birthdate', 'unknown + malformed');
  });

  test('the well-formed neighbours of those values are accepted, so the 400s come from the values', async () => {
    const fine: [string, string, string][] = [
      ['Patient', 'birthdate', '2020-12-31'],
      ['Patient', 'birthdate', '2020-02-29'],
      ['Patient', 'birthdate', 'ge2020'],
      ['Patient', '_lastUpdated', 'le2020-12'],
      ['RiskAssessment', 'probability', '5e-1'],
      ['RiskAssessment', 'probability', 'ap0.5'],
      ['Observation', 'value-quantity', 'gt5||mg'],
      ['Observation', 'code-value-quantity', 'http://loinc.org|8867-4$gt5'],
      ['Location', 'near', '42.25|-83.7|5|km'],
      ['Patient', 'gender:missing', 'true'],
      ['Patient', 'name:contains', 'x'],
      ['Patient', 'general-practitioner:Practitioner', 'x'],
      ['Patient', 'identifier:of-type', 'http://terminology.hl7.org/CodeSystem/v2-0203|MR|12345'],
    ];
    for (const [type, name, value] of fine) {
      const page = await getSearch(server, `${type}?${queryString([[name, value]])}`, { Prefer: 'handling=strict' });
      expect({ query: `${type}?${name}=${value}`, status: page.status }).toEqual({ query: `${type}?${name}=${value}`, status: 200 });
    }
    const some = stored.find((r) => r.resourceType === 'Patient') as Resource;
    expect((await getSearch(server, `Patient?_id=${some.id}`)).matches.map(resourceKey)).toEqual([resourceKey(some)]);
  });
});
