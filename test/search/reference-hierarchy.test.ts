import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * `:below` and `:above` on reference parameters (search.html, hierarchies): a hospital's
 * Locations (hospital → wards → rooms → beds) and its departments, with the expected
 * matches worked out here by walking the fixture's own partOf links.
 */
let server: TestServer;
const partOf = new Map<string, string | undefined>();
const encounterAt = new Map<string, string>();

async function put(resource: Record<string, any>): Promise<void> {
  const res = await fhirRequest('PUT', `${server.base}/${resource.resourceType}/${resource.id}`, { body: resource });
  expect(res.status).toBeLessThan(300);
}

const LOCATIONS: [string, string | undefined][] = [
  ['h', undefined],
  ['ward-1', 'h'],
  ['ward-2', 'h'],
  ['room-1', 'ward-1'],
  ['bed-1', 'room-1'],
  ['bed-2', 'room-1'],
  ['bed-3', 'ward-2'],
  ['elsewhere', undefined],
  // A cycle, which a search must survive.
  ['loop-a', 'loop-b'],
  ['loop-b', 'loop-a'],
];

beforeAll(async () => {
  server = await startTestServer();
  for (const [id, parent] of LOCATIONS) {
    partOf.set(id, parent);
    await put({ resourceType: 'Location', id, name: id, ...(parent ? { partOf: { reference: `Location/${parent}` } } : {}) });
  }
  for (const at of ['bed-1', 'bed-3', 'ward-1', 'h', 'elsewhere']) {
    encounterAt.set(`enc-${at}`, at);
    await put({ resourceType: 'Encounter', id: `enc-${at}`, status: 'finished', class: { code: 'IMP' }, location: [{ location: { reference: `Location/${at}` } }] });
  }
  await put({ resourceType: 'Organization', id: 'hospital', name: 'Hospital' });
  await put({ resourceType: 'Organization', id: 'cardiology', name: 'Cardiology', partOf: { reference: 'Organization/hospital' } });
  await put({ resourceType: 'Organization', id: 'cath-lab', name: 'Cath lab', partOf: { reference: 'Organization/cardiology' } });
}, 60000);

afterAll(async () => {
  await server?.stop();
});

/** The location and everything below it, by walking partOf. */
function subtree(root: string): Set<string> {
  const found = new Set([root]);
  for (let grown = true; grown; ) {
    grown = false;
    for (const [id, parent] of partOf) if (parent && found.has(parent) && !found.has(id)) grown = found.add(id) !== undefined;
  }
  return found;
}

/** The location and every location above it. */
function ancestry(leaf: string): Set<string> {
  const found = new Set<string>();
  for (let at: string | undefined = leaf; at !== undefined && !found.has(at); at = partOf.get(at)) found.add(at);
  return found;
}

async function ids(path: string): Promise<string[]> {
  const res = await fhirRequest('GET', `${server.base}/${path}${path.includes('?') ? '&' : '?'}_count=100`);
  expect({ path, status: res.status }).toEqual({ path, status: 200 });
  return (res.body.entry ?? []).map((e: any) => e.resource.id).sort();
}

test.each(['h', 'ward-1', 'room-1', 'bed-2', 'loop-a'])('Location?partof:below=Location/%s: the locations under it, at any depth', async (root) => {
  const expected = [...partOf.keys()].filter((id) => {
    const parent = partOf.get(id);
    return parent !== undefined && subtree(root).has(parent);
  });
  expect(await ids(`Location?partof:below=Location/${root}`)).toEqual(expected.sort());
});

test.each(['h', 'ward-1', 'ward-2', 'bed-1'])('Encounter?location:below=Location/%s: encounters at it or anywhere under it', async (root) => {
  const expected = [...encounterAt].filter(([, at]) => subtree(root).has(at)).map(([id]) => id);
  expect(await ids(`Encounter?location:below=Location/${root}`)).toEqual(expected.sort());
  // A plain id: Location is the one target of Encounter.location with a hierarchy.
  expect(await ids(`Encounter?location:below=${root}`)).toEqual(expected.sort());
});

test.each(['bed-1', 'room-1', 'bed-3', 'elsewhere'])('Encounter?location:above=Location/%s: encounters at it or at any location it is part of', async (leaf) => {
  const expected = [...encounterAt].filter(([, at]) => ancestry(leaf).has(at)).map(([id]) => id);
  expect(await ids(`Encounter?location:above=Location/${leaf}`)).toEqual(expected.sort());
});

test('several roots OR together, and other filters still apply; Organization departments likewise', async () => {
  expect(await ids('Encounter?location:below=Location/ward-2,Location/elsewhere')).toEqual(['enc-bed-3', 'enc-elsewhere']);
  expect(await ids('Encounter?location:below=Location/h&_id=enc-bed-1,enc-elsewhere')).toEqual(['enc-bed-1']);
  expect(await ids('Organization?partof:below=Organization/hospital')).toEqual(['cardiology', 'cath-lab']);
  expect(await ids('Organization?partof:above=Organization/cardiology')).toEqual(['cardiology', 'cath-lab']);
});

test('a reference to a type without a hierarchy, or values of two types, is a 400', async () => {
  for (const path of ['Patient?general-practitioner:below=Practitioner/x', 'Encounter?location:below=Location/h,Organization/hospital', 'Encounter?subject:above=Patient/p']) {
    const res = await fhirRequest('GET', `${server.base}/${path}`);
    expect({ path, status: res.status }).toEqual({ path, status: 400 });
    expect(res.body.resourceType).toBe('OperationOutcome');
  }
});
