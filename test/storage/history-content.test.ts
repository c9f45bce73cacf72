import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

// A version's history row holds its content only once the version is superseded
// (storage/history-content.ts): every way of reading history still answers every
// version's content, from the current row or from history.

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.stop();
});

const event = {
  resourceType: 'AuditEvent',
  type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
  action: 'R',
  recorded: '2026-01-02T03:04:05Z',
  outcome: '0',
  agent: [{ who: { display: 'history content test' }, requestor: true }],
  source: { observer: { display: 'history content test' } },
};

async function readable(): Promise<{ id: string; recorded: string }> {
  const res = await fhirRequest('POST', `${server.base}/AuditEvent`, { body: event });
  expect(res.status).toBe(201);
  return res.body;
}

test('a current version has no content in history; an update moves the superseded content there, a delete too', async () => {
  const created = await readable();
  const patient = (await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', active: true } })).body;
  const history = (type: string, id: string) => server.server.knex('resource_history').where({ resource_type: type, id }).orderBy('version_id').select('version_id', 'deleted', 'content');
  expect(await history('AuditEvent', created.id)).toEqual([{ version_id: 1, deleted: false, content: null }]);
  expect(await history('Patient', patient.id)).toEqual([{ version_id: 1, deleted: false, content: null }]);

  expect((await fhirRequest('PUT', `${server.base}/Patient/${patient.id}`, { body: { ...patient, active: false } })).status).toBe(200);
  let rows = await history('Patient', patient.id);
  expect(rows.map((r) => [r.version_id, r.content?.active ?? null])).toEqual([
    [1, true],
    [2, null],
  ]);
  expect((await fhirRequest('DELETE', `${server.base}/Patient/${patient.id}`)).status).toBe(204);
  rows = await history('Patient', patient.id);
  expect(rows.map((r) => [r.version_id, r.deleted, r.content?.active ?? null])).toEqual([
    [1, false, true],
    [2, false, false],
    [3, true, null],
  ]);
  // Brought back after the deletion: the deletion's row stays without content.
  expect((await fhirRequest('PUT', `${server.base}/Patient/${patient.id}`, { body: { ...patient, active: true, gender: 'other' } })).status).toBe(201);
  rows = await history('Patient', patient.id);
  expect(rows.map((r) => [r.version_id, r.deleted, r.content?.gender ?? null])).toEqual([
    [1, false, null],
    [2, false, null],
    [3, true, null],
    [4, false, null],
  ]);
  expect(rows[3].content).toBeNull();
  const all = await fhirRequest('GET', `${server.base}/Patient/${patient.id}/_history`);
  expect(all.body.entry.map((e: any) => [e.request.method, e.resource?.active ?? null, e.resource?.gender ?? null])).toEqual([
    ['PUT', true, 'other'],
    ['DELETE', null, null],
    ['PUT', false, null],
    ['POST', true, null],
  ]);
  for (const [version, active] of [
    [1, true],
    [2, false],
    [4, true],
  ] as const) {
    const vread = await fhirRequest('GET', `${server.base}/Patient/${patient.id}/_history/${version}`);
    expect(vread.status).toBe(200);
    expect(vread.body.active).toBe(active);
    expect(vread.body.meta.versionId).toBe(String(version));
  }
});

test("vread, instance, type and system history answer an AuditEvent's content from its current row", async () => {
  const created = await readable();
  const vread = await fhirRequest('GET', `${server.base}/AuditEvent/${created.id}/_history/1`);
  expect(vread.status).toBe(200);
  expect(vread.body).toEqual(created);

  const instance = await fhirRequest('GET', `${server.base}/AuditEvent/${created.id}/_history`);
  expect(instance.body.entry.map((e: any) => e.resource)).toEqual([created]);

  const since = encodeURIComponent(new Date(Date.now() - 60_000).toISOString());
  for (const url of [`${server.base}/AuditEvent/_history?_since=${since}&_count=1000`, `${server.base}/_history?_since=${since}&_count=1000`]) {
    const page = await fhirRequest('GET', url);
    expect(page.status).toBe(200);
    const entry = page.body.entry.find((e: any) => e.resource?.id === created.id);
    expect(entry?.resource).toEqual(created);
    // The server's own AuditEvents of the requests above are there too, each with its content.
    const audit = page.body.entry.filter((e: any) => e.request.url.startsWith('AuditEvent'));
    expect(audit.length).toBeGreaterThan(1);
    expect(audit.every((e: any) => e.resource?.resourceType === 'AuditEvent' && e.resource.id && e.resource.recorded)).toBe(true);
  }

  const at = await fhirRequest('GET', `${server.base}/AuditEvent/${created.id}/_history?_at=${encodeURIComponent(new Date().toISOString())}`);
  expect(at.status).toBe(200);
  expect(at.body.entry.map((e: any) => e.resource)).toEqual([created]);
});
