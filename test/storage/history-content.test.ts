import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

// An AuditEvent's history row holds no copy of its content (storage/history-content.ts):
// every way of reading its history still answers the content, from the current row.

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

test("an AuditEvent's history row is stored without content, and only the AuditEvent's", async () => {
  const created = await readable();
  const patient = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', active: true } });
  const rows = await server.server.knex('resource_history').select('resource_type', 'content').whereIn('id', [created.id, patient.body.id]);
  expect(rows.find((r) => r.resource_type === 'AuditEvent')?.content).toBeNull();
  expect(rows.find((r) => r.resource_type === 'Patient')?.content).toMatchObject({ active: true });
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
