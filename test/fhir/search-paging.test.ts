import type { Bundle, Patient } from '@medplum/fhirtypes';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';
import { loadSynthea } from '../search/search-fixtures';

/**
 * Paging (https://hl7.org/fhir/R4/http.html#paging): following `next` to the end
 * returns every match exactly once, also while other clients create, update and delete;
 * `previous` walks back over the same pages.
 */
let server: TestServer;
let patients: Patient[];

beforeAll(async () => {
  server = await startTestServer();
  patients = loadSynthea(['Patient'], 4).filter((r): r is Patient => r.resourceType === 'Patient');
  // Sixty patients: copies of the Synthea ones, under new server ids, with distinct families.
  for (let i = 0; i < 60; i++) {
    const source = patients[i % patients.length];
    const { id: _id, meta: _meta, ...body } = source;
    const name = [{ ...(source.name?.[0] ?? {}), family: `Pager${String(i % 17).padStart(2, '0')}` }];
    const res = await fhirRequest('POST', `${server.base}/Patient`, { body: { ...body, name } });
    expect(res.status).toBe(201);
  }
});

afterAll(async () => {
  await server?.stop();
});

async function searchset(url: string): Promise<Bundle> {
  const res = await fhirRequest<Bundle>('GET', url);
  expect(res.status).toBe(200);
  return res.body;
}

function link(bundle: Bundle, relation: string): string | undefined {
  return bundle.link?.find((l) => l.relation === relation)?.url;
}

function ids(bundle: Bundle): string[] {
  return (bundle.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource?.id as string);
}

async function allIds(): Promise<Set<string>> {
  return new Set(ids(await searchset(`${server.base}/Patient?_count=1000&_elements=id`)));
}

async function pageToEnd(first: string, between?: (page: number) => Promise<void>): Promise<{ seen: string[]; pages: Bundle[] }> {
  const seen: string[] = [];
  const pages: Bundle[] = [];
  let url: string | undefined = first;
  while (url) {
    const bundle = await searchset(url);
    pages.push(bundle);
    seen.push(...ids(bundle));
    url = link(bundle, 'next');
    if (url && between) await between(pages.length);
  }
  return { seen, pages };
}

test.each([
  ['the default order', ''],
  ['a string sort with ties', '&_sort=family'],
  ['a descending string sort, then _id descending', '&_sort=-family,-_id'],
  ['a date sort (birthdate) with ties and a second key', '&_sort=birthdate,-family'],
  ['a token sort with ties (gender), then a descending date', '&_sort=gender,-birthdate'],
])('paging to the end with %s returns every patient exactly once while others create, update and delete', async (_name, sort) => {
  const before = await allIds();
  const stable = [...before];
  const deleted = new Set<string>();
  let created = 0;
  const { seen } = await pageToEnd(`${server.base}/Patient?_count=7${sort}`, async (page) => {
    // Between pages, other clients write: a new patient, an update (which moves its
    // _lastUpdated but none of the sort keys), and a delete.
    const res = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', name: [{ family: `Pager${page % 17}` }] } });
    expect(res.status).toBe(201);
    created++;
    const updated = stable[(page * 11) % stable.length];
    const current = (await fhirRequest('GET', `${server.base}/Patient/${updated}`)).body;
    if (current?.resourceType === 'Patient') {
      expect((await fhirRequest('PUT', `${server.base}/Patient/${updated}`, { body: { ...current, active: !current.active } })).status).toBe(200);
    }
    const victim = stable[(page * 7 + 3) % stable.length];
    if (!deleted.has(victim)) {
      expect((await fhirRequest('DELETE', `${server.base}/Patient/${victim}`)).status).toBeLessThan(300);
      deleted.add(victim);
    }
  });
  expect(created).toBeGreaterThan(3);
  // No duplicates …
  expect(seen.length).toBe(new Set(seen).size);
  // … and none skipped: every patient that existed throughout is there.
  const seenSet = new Set(seen);
  const missing = [...before].filter((id) => !deleted.has(id) && !seenSet.has(id));
  expect(missing).toEqual([]);
});

test('previous links walk back over the same pages, and first returns to the start', async () => {
  const { pages } = await pageToEnd(`${server.base}/Patient?_count=6&_sort=-family`);
  expect(pages.length).toBeGreaterThan(3);
  expect(link(pages[0], 'previous')).toBeUndefined();
  let bundle = pages[pages.length - 1];
  for (let i = pages.length - 2; i >= 0; i--) {
    const previous = link(bundle, 'previous');
    expect(previous).toBeDefined();
    bundle = await searchset(previous as string);
    expect(ids(bundle)).toEqual(ids(pages[i]));
  }
  expect(link(bundle, 'previous')).toBeUndefined();
  const first = await searchset(link(pages[2], 'first') as string);
  expect(ids(first)).toEqual(ids(pages[0]));
});

test('the pages of a sorted search follow the sort order across page boundaries', async () => {
  const { pages } = await pageToEnd(`${server.base}/Patient?_count=5&_sort=family,-_id&_elements=name`);
  const families = pages.flatMap((p) => (p.entry ?? []).map((e) => ((e.resource as Patient).name?.[0]?.family ?? '').toLowerCase()));
  const entries = pages.flatMap((p) => (p.entry ?? []).map((e) => e.resource?.id as string));
  // Independently: sort the same pairs in JavaScript (family ascending, missing last; id descending).
  const pairs = families.map((f, i) => ({ f, id: entries[i] }));
  const expected = [...pairs].sort((a, b) => (a.f === b.f ? (a.id < b.id ? 1 : a.id > b.id ? -1 : 0) : a.f === '' ? 1 : b.f === '' ? -1 : a.f < b.f ? -1 : 1));
  expect(pairs).toEqual(expected);
});

test('a tampered or foreign cursor is a 400 OperationOutcome', async () => {
  const res = await fhirRequest('GET', `${server.base}/Patient?_cursor=bm90LWEtY3Vyc29y`);
  expect(res.status).toBe(400);
  expect(res.body.resourceType).toBe('OperationOutcome');
  // A cursor of a search with one sort key, used with two.
  const page = await searchset(`${server.base}/Patient?_count=3`);
  const next = new URL(link(page, 'next') as string);
  next.searchParams.set('_sort', 'family,birthdate');
  expect((await fhirRequest('GET', next.toString())).status).toBe(400);
});

test('_total=estimate gives the exact count when the result is small', async () => {
  const accurate = await searchset(`${server.base}/Patient?_total=accurate&_count=1`);
  const estimate = await searchset(`${server.base}/Patient?_total=estimate&_count=1`);
  expect(accurate.total).toBe((await allIds()).size);
  expect(estimate.total).toBe(accurate.total);
  // Also with criteria, and with a quantity-style jsonpath criterion the SQL escapes.
  const females = await searchset(`${server.base}/Patient?gender=female&_total=accurate&_count=1`);
  expect((await searchset(`${server.base}/Patient?gender=female&_total=estimate&_count=1`)).total).toBe(females.total);
  expect((await searchset(`${server.base}/Patient?_count=1`)).total).toBeUndefined();
});

test('a search narrowed to one patient pages forward and back in id order, without gaps, beside another patient’s interleaved resources', async () => {
  const subjects: string[] = [];
  for (const family of ['NarrowA', 'NarrowB']) {
    const res = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', name: [{ family }] } });
    subjects.push(`Patient/${res.body.id}`);
  }
  const mine: string[] = [];
  for (let i = 0; i < 40; i++) {
    const subject = subjects[i % 3 === 0 ? 1 : 0];
    const res = await fhirRequest('POST', `${server.base}/Observation`, {
      body: { resourceType: 'Observation', status: 'final', code: { text: `narrow ${i}` }, subject: { reference: subject } },
    });
    expect(res.status).toBe(201);
    if (subject === subjects[0]) mine.push(res.body.id);
  }
  // The order the server gives the same resources when asked by id (the usual query).
  const expected = ids(await searchset(`${server.base}/Observation?_id=${mine.join(',')}&_count=100`));
  expect(new Set(expected)).toEqual(new Set(mine));

  const { seen, pages } = await pageToEnd(`${server.base}/Observation?subject=${subjects[0]}&_count=6`);
  expect(seen).toEqual(expected);
  expect(pages.length).toBe(Math.ceil(mine.length / 6));
  let bundle = pages[pages.length - 1];
  for (let i = pages.length - 2; i >= 0; i--) {
    bundle = await searchset(link(bundle, 'previous') as string);
    expect(ids(bundle)).toEqual(ids(pages[i]));
  }
  expect(link(bundle, 'previous')).toBeUndefined();
});

test('a patient’s search with further filters finds exactly the matches the filters select, paging both ways, for one patient, two patients and a practitioner', async () => {
  const made = async (type: string, body: Record<string, unknown>): Promise<string> => {
    const res = await fhirRequest('POST', `${server.base}/${type}`, { body: { resourceType: type, ...body } });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };
  const patientsHere = [await made('Patient', { name: [{ family: 'Driven0' }] }), await made('Patient', { name: [{ family: 'Driven1' }] })];
  const practitioner = await made('Practitioner', { name: [{ family: 'Drives' }] });
  const created: { id: string; patient: number; code: string; year: number; byPractitioner: boolean }[] = [];
  for (let i = 0; i < 48; i++) {
    const fact = { patient: i % 3 === 0 ? 1 : 0, code: i % 2 === 0 ? 'driven-a' : 'driven-b', year: 2010 + (i % 12), byPractitioner: i % 4 !== 1 };
    const id = await made('Observation', {
      status: 'final',
      code: { coding: [{ system: 'http://example.org/driven', code: fact.code }] },
      subject: { reference: `Patient/${patientsHere[fact.patient]}` },
      effectiveDateTime: `${fact.year}-06-01`,
      performer: fact.byPractitioner ? [{ reference: `Practitioner/${practitioner}` }] : undefined,
    });
    created.push({ id, ...fact });
  }
  const filters = 'code=http://example.org/driven|driven-a&date=ge2015';
  const cases: [string, (c: (typeof created)[number]) => boolean][] = [
    [`subject=Patient/${patientsHere[0]}`, (c) => c.patient === 0],
    [`patient=Patient/${patientsHere[0]},Patient/${patientsHere[1]}`, () => true],
    [`performer=Practitioner/${practitioner}`, (c) => c.byPractitioner],
  ];
  for (const [reference, chosen] of cases) {
    const wanted = created.filter((c) => chosen(c) && c.code === 'driven-a' && c.year >= 2015).map((c) => c.id);
    expect(wanted.length).toBeGreaterThan(4);
    // The order the server gives the same resources when asked by id (the usual query).
    const expected = ids(await searchset(`${server.base}/Observation?_id=${wanted.join(',')}&_count=100`));
    expect(new Set(expected)).toEqual(new Set(wanted));
    const { seen, pages } = await pageToEnd(`${server.base}/Observation?${reference}&${filters}&_count=4`);
    expect(seen).toEqual(expected);
    let bundle = pages[pages.length - 1];
    for (let i = pages.length - 2; i >= 0; i--) {
      bundle = await searchset(link(bundle, 'previous') as string);
      expect(ids(bundle)).toEqual(ids(pages[i]));
    }
  }
  // The compartment (subject or performer is the patient) narrows the same way.
  for (const [patient, index] of patientsHere.map((p, i) => [p, i] as const)) {
    const wanted = created.filter((c) => c.patient === index && c.code === 'driven-a' && c.year >= 2015).map((c) => c.id);
    const expected = ids(await searchset(`${server.base}/Observation?_id=${wanted.join(',')}&_count=100`));
    const { seen, pages } = await pageToEnd(`${server.base}/Patient/${patient}/Observation?${filters}&_count=4`);
    expect(wanted.length).toBeGreaterThan(0);
    expect(seen).toEqual(expected);
    if (index === 0) expect(pages.length).toBeGreaterThan(1);
    if (pages.length > 1) expect(ids(await searchset(link(pages[1], 'previous') as string))).toEqual(ids(pages[0]));
  }
});
