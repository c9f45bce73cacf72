import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { loadSyntheaOverHttp } from '../../scripts/bench/synthea-transaction-load';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';
import { type ExpectedRecord, expectedRecords, isCompartmentType, referencesIn } from './synthea-records';

/**
 * Patient/$everything over the whole Synthea set, loaded as a client would (POST of
 * each bundle: the two information batches, then the 120 patient transactions): every
 * patient's record is exactly what its bundle file says (synthea-records.ts), whole or
 * paged; `_type` narrows it; at type level the records follow one another.
 */
let server: TestServer;
let records: ExpectedRecord[];

beforeAll(async () => {
  server = await startTestServer();
  const loaded = await loadSyntheaOverHttp(server.base, 2);
  records = expectedRecords(loaded);
  expect(records).toHaveLength(120);
}, 600000);

afterAll(async () => {
  await server?.stop();
});

interface Walk {
  entries: BundleEntry[];
  pages: Bundle[];
}

/** Follows `next` links to the end. */
async function walk(url: string, init: { method?: string; body?: unknown } = {}): Promise<Walk> {
  const pages: Bundle[] = [];
  let next: string | undefined = url;
  let first = true;
  while (next) {
    const res: { status: number; body: Bundle } = first && init.method ? await fhirRequest<Bundle>(init.method, next, { body: init.body }) : await fhirRequest<Bundle>('GET', next);
    first = false;
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('Bundle');
    expect(res.body.type).toBe('searchset');
    pages.push(res.body);
    next = res.body.link?.find((l) => l.relation === 'next')?.url;
  }
  return { entries: pages.flatMap((p) => p.entry ?? []).filter((e) => e.search?.mode !== 'outcome'), pages };
}

function keyOf(entry: BundleEntry): string {
  return `${entry.resource?.resourceType}/${entry.resource?.id}`;
}

function keysWithMode(entries: BundleEntry[], mode: 'match' | 'include'): string[] {
  return entries.filter((e) => e.search?.mode === mode).map(keyOf).sort();
}

function countByType(keys: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key.split('/')[0], (counts.get(key.split('/')[0]) ?? 0) + 1);
  return counts;
}

function everythingUrl(record: ExpectedRecord, query = ''): string {
  return `${server.base}/${record.patient}/$everything${query ? `?${query}` : ''}`;
}

test('every patient: the Patient, its compartment (match) and the resources they refer to (include), exactly the bundle file plus the shared resources it refers to', async () => {
  const check = async (record: ExpectedRecord): Promise<void> => {
    const { entries, pages } = await walk(everythingUrl(record));
    // The whole record in one Bundle when no _count is given (the largest has ~3,440 entries).
    expect(pages).toHaveLength(1);
    expect(keysWithMode(entries, 'match')).toEqual([...record.compartment].sort());
    expect(keysWithMode(entries, 'include')).toEqual([...record.referenced].sort());
    expect(new Set(entries.map(keyOf)).size).toBe(entries.length);
    expect(entries[0].resource?.resourceType).toBe('Patient');
    expect(`Patient/${entries[0].resource?.id}`).toBe(record.patient);
    for (const entry of entries) expect(entry.fullUrl).toBe(`${server.base}/${keyOf(entry)}`);

    // By type and count, the bundle file's resources; beyond them only the shared ones of the information bundles.
    const returned = countByType(entries.map(keyOf));
    for (const [type, count] of record.bundleCounts) expect([type, returned.get(type)]).toEqual([type, count]);
    const extra = [...returned.keys()].filter((type) => !record.bundleCounts.has(type));
    expect(extra.every((type) => ['Practitioner', 'Organization', 'Location', 'PractitionerRole'].includes(type))).toBe(true);
    // Every Practitioner, Organization, Location, Medication, Device any of the patient's resources refers to is there.
    const keys = new Set(entries.map(keyOf));
    const everyReference = new Set([...record.resources.values()].flatMap((r) => [...referencesIn(r)]));
    for (const reference of everyReference) {
      if (!isCompartmentType(reference.split('/')[0])) expect([reference, keys.has(reference)]).toEqual([reference, true]);
    }
  };
  // Two at a time, as a client would.
  let next = 0;
  await Promise.all(
    [0, 1].map(async () => {
      while (next < records.length) await check(records[next++]);
    })
  );
}, 300000);

test('paging with _count: the pages of the largest record are the whole record, in the same order, each entry once, linked by next (and first)', async () => {
  const largest = records.reduce((a, b) => (a.resources.size >= b.resources.size ? a : b));
  const whole = (await walk(everythingUrl(largest))).entries.map(keyOf);
  expect(whole.length).toBe(largest.compartment.size + largest.referenced.size);
  for (const count of [250, 1000]) {
    const { entries, pages } = await walk(everythingUrl(largest, `_count=${count}`));
    expect(entries.map(keyOf)).toEqual(whole);
    expect(pages).toHaveLength(Math.ceil(whole.length / count));
    expect(pages.slice(0, -1).every((p) => p.entry?.length === count)).toBe(true);
    expect(pages[0].link?.some((l) => l.relation === 'first')).toBe(false);
    for (const page of pages.slice(1)) expect(page.link?.find((l) => l.relation === 'first')?.url).toBe(everythingUrl(largest, `_count=${count}`));
  }
});

test('paging of a small record one entry at a time crosses from the compartment to the referenced resources without gaps', async () => {
  const smallest = records.reduce((a, b) => (a.resources.size <= b.resources.size ? a : b));
  const whole = (await walk(everythingUrl(smallest))).entries.map(keyOf);
  const { entries, pages } = await walk(everythingUrl(smallest, '_count=1'));
  expect(entries.map(keyOf)).toEqual(whole);
  expect(pages).toHaveLength(whole.length);
});

test('_type returns only the listed types (comma-separated or repeated), references still followed from the whole record', async () => {
  const record = records[7];
  const wanted = (key: string): boolean => /^(Encounter|Practitioner|Medication)\//.test(key);
  for (const query of ['_type=Encounter,Practitioner,Medication', '_type=Encounter&_type=Practitioner,Medication']) {
    const { entries } = await walk(everythingUrl(record, `${query}&_count=100`));
    expect(keysWithMode(entries, 'match')).toEqual([...record.compartment].filter(wanted).sort());
    expect(keysWithMode(entries, 'include')).toEqual([...record.referenced].filter(wanted).sort());
  }
  // A Practitioner only Claims refer to still comes: references are followed from every type.
  const { entries } = await walk(everythingUrl(record, '_type=Practitioner'));
  expect(keysWithMode(entries, 'include')).toEqual([...record.referenced].filter((k) => k.startsWith('Practitioner/')).sort());
});

test('POST with a Parameters body: the same pages as GET, the next link a GET with the same parameters', async () => {
  const record = records[3];
  const get = await walk(everythingUrl(record, '_type=Observation,Organization&_count=40'));
  const post = await walk(everythingUrl(record), {
    method: 'POST',
    body: {
      resourceType: 'Parameters',
      parameter: [
        { name: '_type', valueCode: 'Observation' },
        { name: '_type', valueCode: 'Organization' },
        { name: '_count', valueInteger: 40 },
      ],
    },
  });
  expect(post.entries.map(keyOf)).toEqual(get.entries.map(keyOf));
  expect(post.pages.length).toBeGreaterThan(1);
  const next = new URL(post.pages[0].link?.find((l) => l.relation === 'next')?.url as string);
  expect(next.pathname).toBe(new URL(everythingUrl(record)).pathname);
  expect(next.searchParams.getAll('_type')).toEqual(['Observation', 'Organization']);
  expect(next.searchParams.get('_count')).toBe('40');
});

test('type level: Patient/$everything pages through every patient record in turn; _type narrows it', async () => {
  const { entries } = await walk(`${server.base}/Patient/$everything?_type=Patient`);
  expect(entries.map(keyOf).sort()).toEqual(records.map((r) => r.patient).sort());

  const wanted = (key: string): boolean => /^(Patient|Condition|Organization)\//.test(key);
  const paged = await walk(`${server.base}/Patient/$everything?_type=Patient,Condition,Organization&_count=300`);
  // Each record in full, one after the other (patients in id order); shared Organizations once per record, never twice on one page.
  const expected = [...records]
    .sort((a, b) => (a.patient < b.patient ? -1 : 1))
    .flatMap((r) => [...[...r.compartment].filter(wanted), ...[...r.referenced].filter(wanted)]);
  const got = paged.entries.map(keyOf);
  expect(new Set(got)).toEqual(new Set(expected));
  expect(keysWithMode(paged.entries, 'match')).toEqual(expected.filter((k) => !k.startsWith('Organization/')).sort());
  for (const page of paged.pages) {
    const keys = (page.entry ?? []).map(keyOf);
    expect(new Set(keys).size).toBe(keys.length);
  }
  expect(got.length).toBeLessThanOrEqual(expected.length);
});

/** Follows `previous` links from `url` back to the first page; the pages come back in the order they were read. */
async function walkBack(url: string): Promise<Bundle[]> {
  const pages: Bundle[] = [];
  let previous: string | undefined = url;
  while (previous) {
    const res: { status: number; body: Bundle } = await fhirRequest<Bundle>('GET', previous);
    expect(res.status).toBe(200);
    pages.push(res.body);
    previous = res.body.link?.find((l) => l.relation === 'previous')?.url;
  }
  return pages;
}

const linkOf = (page: Bundle, relation: string): string | undefined => page.link?.find((l) => l.relation === relation)?.url;

test('previous links walk back over the same pages as next, each page with the total of the whole record', async () => {
  const largest = records.reduce((a, b) => (a.resources.size >= b.resources.size ? a : b));
  const forward = await walk(everythingUrl(largest, '_count=250'));
  expect(forward.pages.length).toBeGreaterThan(3);
  // Every page, first or not, carries the record's total: its match entries (the compartment).
  for (const page of forward.pages) expect(page.total).toBe(largest.compartment.size);
  expect(linkOf(forward.pages[0], 'previous')).toBeUndefined();
  for (const page of forward.pages.slice(1)) expect(linkOf(page, 'previous')).toBeDefined();

  const back = await walkBack(linkOf(forward.pages[forward.pages.length - 1], 'self') as string);
  expect(back.map((p) => (p.entry ?? []).map(keyOf))).toEqual([...forward.pages].reverse().map((p) => (p.entry ?? []).map(keyOf)));
  // A page reached backwards links forward again to the page it came from, and has the same total.
  for (const page of back) expect(page.total).toBe(largest.compartment.size);
  const forwardAgain = await fhirRequest<Bundle>('GET', linkOf(back[back.length - 1], 'next') as string);
  expect((forwardAgain.body.entry ?? []).map(keyOf)).toEqual((forward.pages[1].entry ?? []).map(keyOf));
});

test('previous links one entry at a time cross back from the referenced resources into the compartment', async () => {
  const smallest = records.reduce((a, b) => (a.resources.size <= b.resources.size ? a : b));
  const forward = await walk(everythingUrl(smallest, '_count=1'));
  const back = await walkBack(linkOf(forward.pages[forward.pages.length - 1], 'self') as string);
  expect(back.flatMap((p) => (p.entry ?? []).map(keyOf)).reverse()).toEqual(forward.entries.map(keyOf));
  expect(back.every((p) => p.entry?.length === 1)).toBe(true);
});

test('the total follows _type: the match entries of the types asked for', async () => {
  const record = records[7];
  const { pages } = await walk(everythingUrl(record, '_type=Observation,Practitioner&_count=20'));
  expect(pages.length).toBeGreaterThan(1);
  const observations = [...record.compartment].filter((k) => k.startsWith('Observation/')).length;
  for (const page of pages) expect(page.total).toBe(observations);
});

test('type level: previous links walk back through every patient record to the first page, no page repeating an entry', async () => {
  const query = `${server.base}/Patient/$everything?_type=Patient,Condition,Organization&_count=300`;
  const forward = await walk(query);
  const back = await walkBack(linkOf(forward.pages[forward.pages.length - 1], 'self') as string);
  const keys = (pages: Bundle[]): Set<string> => new Set(pages.flatMap((p) => (p.entry ?? []).map(keyOf)));
  expect(keys(back)).toEqual(keys(forward.pages));
  for (const page of back) {
    const onPage = (page.entry ?? []).map(keyOf);
    expect(new Set(onPage).size).toBe(onPage.length);
  }
  // The walk ends on the first page: the first patient's record from its start.
  expect((back[back.length - 1].entry ?? []).map(keyOf)[0]).toBe((forward.pages[0].entry ?? []).map(keyOf)[0]);
});
