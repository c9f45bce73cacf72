import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * `_list` (R4 search.html#list): the resources a List references from `List.entry.item`,
 * with every other search parameter still applying, over HTTP, on a server that requires
 * tokens (the List is searched as the principal may: it is a `_has` source).
 */
let server: TestServer;
let admin: string;

const search = async (path: string, token = admin): Promise<{ status: number; ids: string[] }> => {
  const res = await fhirRequest('GET', `${server.base}/${path}`, { headers: { Authorization: `Bearer ${token}` } });
  const entries = ((res.body as { entry?: { resource: { resourceType: string; id: string }; search?: { mode?: string } }[] }).entry ?? []).filter((e) => e.search?.mode === 'match');
  return { status: res.status, ids: entries.map((e) => `${e.resource.resourceType}/${e.resource.id}`).sort() };
};

const put = async (resource: { resourceType: string; id: string }): Promise<void> => {
  const res = await fhirRequest('PUT', `${server.base}/${resource.resourceType}/${resource.id}`, { body: resource, headers: { Authorization: `Bearer ${admin}` } });
  expect(res.status).toBeLessThan(300);
};

const list = (id: string, items: string[]) => ({
  resourceType: 'List',
  id,
  status: 'current',
  mode: 'working',
  entry: items.map((reference) => ({ item: { reference } })),
});

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  admin = await mintToken(server, { scope: 'system/*.*' });
  for (const [id, family] of [['p1', 'Ash'], ['p2', 'Birch'], ['p3', 'Ash'], ['p4', 'Cedar'], ['p5', 'Ash']]) await put({ resourceType: 'Patient', id, name: [{ family }] } as never);
  await put({ resourceType: 'Observation', id: 'o1', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/p1' } } as never);
  await put(list('ward-a', ['Patient/p1', 'Patient/p3', 'Observation/o1', 'Patient/p5']));
  await put(list('ward-b', ['Patient/p2', 'Patient/p3']));
  await put(list('gone', ['Patient/p4']));
  expect((await fhirRequest('DELETE', `${server.base}/List/gone`, { headers: { Authorization: `Bearer ${admin}` } })).status).toBeLessThan(300);
  expect((await fhirRequest('DELETE', `${server.base}/Patient/p5`, { headers: { Authorization: `Bearer ${admin}` } })).status).toBeLessThan(300);
}, 60000);

afterAll(async () => {
  await server?.stop();
});

test('_list returns the live resources of that type the List references, ORed over ids and ANDed when repeated', async () => {
  expect(await search('Patient?_list=ward-a')).toEqual({ status: 200, ids: ['Patient/p1', 'Patient/p3'] });
  expect(await search('Observation?_list=ward-a')).toEqual({ status: 200, ids: ['Observation/o1'] });
  expect(await search('Patient?_list=ward-a,ward-b')).toEqual({ status: 200, ids: ['Patient/p1', 'Patient/p2', 'Patient/p3'] });
  expect(await search('Patient?_list=ward-a&_list=ward-b')).toEqual({ status: 200, ids: ['Patient/p3'] });
  expect(await search('Patient?_list=ward-a&family=ash&_id:not=p3')).toEqual({ status: 200, ids: ['Patient/p1'] });
  expect(await search('?_type=Patient,Observation&_list=ward-a')).toEqual({ status: 200, ids: ['Observation/o1', 'Patient/p1', 'Patient/p3'] });
  // A deleted List lists nothing; an unknown one neither.
  expect(await search('Patient?_list=gone')).toEqual({ status: 200, ids: [] });
  expect(await search('Patient?_list=nowhere')).toEqual({ status: 200, ids: [] });
});

test('unknown functional lists and modifiers are a 400 naming _list', async () => {
  for (const path of ['Patient?_list=$current-wishes', 'Patient?_list:missing=true', 'Patient?_list:not=ward-a']) {
    const res = await fhirRequest('GET', `${server.base}/${path}`, { headers: { Authorization: `Bearer ${admin}` } });
    expect({ path, status: res.status, names: JSON.stringify(res.body).includes('_list') }).toEqual({ path, status: 400, names: true });
  }
});

test('a token that may not search Lists cannot filter by one', async () => {
  const patientsOnly = await mintToken(server, { scope: 'system/Patient.rs' });
  expect((await search('Patient?family=ash', patientsOnly)).ids).toEqual(['Patient/p1', 'Patient/p3']);
  expect((await search('Patient?_list=ward-a', patientsOnly)).status).toBe(403);
});

test('the CapabilityStatement lists _list on every type', async () => {
  const res = await fhirRequest('GET', `${server.base}/metadata`);
  const resources = (res.body as { rest: { resource: { type: string; searchParam?: { name: string; type: string }[] }[] }[] }).rest[0].resource;
  for (const type of ['Patient', 'Observation', 'List', 'Bundle']) {
    expect(resources.find((r) => r.type === type)?.searchParam?.find((p) => p.name === '_list')).toMatchObject({ type: 'special' });
  }
});
