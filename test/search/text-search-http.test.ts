import type { Bundle, Condition } from '@medplum/fhirtypes';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';
import { getSearch, sortedKeys } from './http-search';

/**
 * `_text` through the server's own write paths: a create, an update-as-create, a
 * transaction (createMany), an update that rewrites the narrative and a delete each leave
 * the narrative's words indexed as the resource now stands, and the CapabilityStatement
 * lists `_text` where it works.
 */
let server: TestServer;

const condition = (id: string, narrative: string): Condition => ({
  resourceType: 'Condition',
  id,
  subject: { reference: 'Patient/p1' },
  text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${narrative}</div>` },
});

const textSearch = async (value: string): Promise<string[]> => {
  const page = await getSearch(server, `Condition?_text=${encodeURIComponent(value)}`);
  expect(page.status).toBe(200);
  return sortedKeys(page.matches);
};

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

test('every write path indexes the narrative, and updates and deletes leave no stale words', async () => {
  const created = await fhirRequest('POST', `${server.base}/Condition`, { body: condition('ignored', 'Left <b>femur</b> fracture') });
  expect(created.status).toBe(201);
  const createdKey = `Condition/${(created.body as Condition).id}`;
  expect((await fhirRequest('PUT', `${server.base}/Condition/put-one`, { body: condition('put-one', 'Acute appendicitis') })).status).toBe(201);
  const transaction: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: ['Femur pain after fall', 'Chronic kidney disease'].map((text, i) => ({
      fullUrl: `urn:uuid:00000000-0000-4000-8000-00000000000${i}`,
      resource: { ...condition('x', text), id: undefined },
      request: { method: 'POST', url: 'Condition' },
    })),
  };
  const committed = await fhirRequest('POST', server.base, { body: transaction });
  expect(committed.status).toBe(200);
  const [painKey, kidneyKey] = (committed.body as Bundle).entry!.map((e) => e.response!.location!.split('/_history')[0].replace(`${server.base}/`, ''));

  expect(await textSearch('femur')).toEqual([createdKey, painKey].sort());
  expect(await textSearch('"femur fracture"')).toEqual([createdKey]);
  expect(await textSearch('kidney OR appendicitis')).toEqual([kidneyKey, 'Condition/put-one'].sort());

  expect((await fhirRequest('PUT', `${server.base}/Condition/put-one`, { body: condition('put-one', 'Resolved: no appendicitis, femur bruise') })).status).toBe(200);
  expect(await textSearch('acute')).toEqual([]);
  expect(await textSearch('femur')).toEqual([createdKey, painKey, 'Condition/put-one'].sort());

  expect((await fhirRequest('DELETE', `${server.base}/${painKey}`)).status).toBeLessThan(300);
  expect(await textSearch('femur')).toEqual([createdKey, 'Condition/put-one'].sort());
  expect(await textSearch('pain')).toEqual([]);

  // System search: _text applies to every searched type that has a narrative; with Bundle among them it is ignored, with a warning.
  const system = await getSearch(server, `?_type=Condition,Patient&_text=femur`);
  expect(sortedKeys(system.matches)).toEqual([createdKey, 'Condition/put-one'].sort());
  const withBundle = await getSearch(server, `?_type=Condition,Bundle&_text=femur`);
  expect(withBundle.outcomes).toHaveLength(1);
  expect(JSON.stringify(withBundle.outcomes)).toContain('_text');

  const malformed = await getSearch(server, `Condition?_text=${encodeURIComponent('(femur')}`);
  expect(malformed.status).toBe(400);
  expect(JSON.stringify(malformed.body)).toContain('_text');
});

test('the CapabilityStatement lists _text on resources with a narrative, and not on Bundle, Binary or Parameters', async () => {
  const res = await fhirRequest('GET', `${server.base}/metadata`);
  const resources = (res.body as { rest: { resource: { type: string; searchParam?: { name: string; type: string }[] }[] }[] }).rest[0].resource;
  const textParam = (type: string) => resources.find((r) => r.type === type)?.searchParam?.find((p) => p.name === '_text');
  for (const type of ['Patient', 'Condition', 'Observation', 'Composition']) expect(textParam(type)).toMatchObject({ type: 'string' });
  for (const type of ['Bundle', 'Binary', 'Parameters']) expect(textParam(type)).toBeUndefined();
});
