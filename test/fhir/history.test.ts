import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.stop();
});

async function create(type: string, body: Record<string, unknown> = {}): Promise<any> {
  const res = await fhirRequest('POST', `${server.base}/${type}`, { body: { resourceType: type, ...body } });
  expect(res.status).toBe(201);
  return res.body;
}

async function followAll(url: string): Promise<any[]> {
  const entries: any[] = [];
  let next: string | undefined = url;
  while (next) {
    const page: any = await fhirRequest('GET', next);
    expect(page.status).toBe(200);
    entries.push(...(page.body.entry ?? []));
    next = page.body.link?.find((l: any) => l.relation === 'next')?.url;
  }
  return entries;
}

test('instance history lists every version newest first with request and response details', async () => {
  const p = await create('Patient', { active: true });
  await fhirRequest('PUT', `${server.base}/Patient/${p.id}`, { body: { ...p, active: false } });
  await fhirRequest('DELETE', `${server.base}/Patient/${p.id}`);
  const res = await fhirRequest('GET', `${server.base}/Patient/${p.id}/_history`);
  expect(res.status).toBe(200);
  expect(res.body.resourceType).toBe('Bundle');
  expect(res.body.type).toBe('history');
  expect(res.body.entry.map((e: any) => e.response.etag)).toEqual(['W/"3"', 'W/"2"', 'W/"1"']);
  expect(res.body.entry.map((e: any) => e.request.method)).toEqual(['DELETE', 'PUT', 'POST']);
  expect(res.body.entry[1].resource.active).toBe(false);
  expect(res.body.entry[2].resource.active).toBe(true);
  expect(res.body.entry[2].fullUrl).toBe(`${server.base}/Patient/${p.id}`);
});

test('history of an unknown resource is 404', async () => {
  expect((await fhirRequest('GET', `${server.base}/Patient/nobody-here/_history`)).status).toBe(404);
});

test('type history holds only that type, system history holds every type', async () => {
  const o = await create('Organization', { name: 'Type History Org' });
  const b = await create('Basic', { code: { text: 'x' } });
  const typeHistory = await followAll(`${server.base}/Organization/_history?_count=50`);
  expect(typeHistory.every((e) => e.resource.resourceType === 'Organization')).toBe(true);
  expect(typeHistory.some((e) => e.resource.id === o.id)).toBe(true);
  const systemHistory = await followAll(`${server.base}/_history?_count=50`);
  const ids = systemHistory.map((e) => e.fullUrl);
  expect(ids).toContain(`${server.base}/Organization/${o.id}`);
  expect(ids).toContain(`${server.base}/Basic/${b.id}`);
});

test('_since keeps only versions created at or after the instant', async () => {
  const before = await create('Device');
  await new Promise((r) => setTimeout(r, 20));
  const since = new Date().toISOString();
  const after = await create('Device');
  const res = await fhirRequest('GET', `${server.base}/Device/_history?_since=${encodeURIComponent(since)}`);
  const ids = res.body.entry.map((e: any) => e.resource.id);
  expect(ids).toContain(after.id);
  expect(ids).not.toContain(before.id);
  expect((await fhirRequest('GET', `${server.base}/Device/_history?_since=yesterday`)).status).toBe(400);
});

test('_at returns the version that was current at that time', async () => {
  const p = await create('Patient', { gender: 'male' });
  await new Promise((r) => setTimeout(r, 20));
  const between = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 20));
  await fhirRequest('PUT', `${server.base}/Patient/${p.id}`, { body: { ...p, gender: 'female' } });
  const res = await fhirRequest('GET', `${server.base}/Patient/${p.id}/_history?_at=${encodeURIComponent(between)}`);
  expect(res.body.entry).toHaveLength(1);
  expect(res.body.entry[0].resource.gender).toBe('male');
});

test('paging with _count follows next links to the end, with no duplicate or skipped version while others write', async () => {
  const created: string[] = [];
  for (let i = 0; i < 25; i++) {
    created.push((await create('Flag', { status: 'active', code: { text: `flag ${i}` }, subject: { display: 'x' } })).id);
  }
  const seen: string[] = [];
  let next: string | undefined = `${server.base}/Flag/_history?_count=7`;
  let pages = 0;
  while (next) {
    const page: any = await fhirRequest('GET', next);
    expect(page.body.entry.length).toBeLessThanOrEqual(7);
    seen.push(...page.body.entry.map((e: any) => `${e.resource.id}/${e.response.etag}`));
    next = page.body.link.find((l: any) => l.relation === 'next')?.url;
    pages++;
    // Writes between pages must neither shift nor duplicate what the pager sees.
    await create('Flag', { status: 'inactive', code: { text: 'concurrent' }, subject: { display: 'x' } });
  }
  expect(pages).toBe(4);
  expect(new Set(seen).size).toBe(seen.length);
  for (const id of created) {
    expect(seen).toContain(`${id}/W/"1"`);
  }
});

test('a tampered page cursor is 400', async () => {
  expect((await fhirRequest('GET', `${server.base}/_history?_cursor=garbage`)).status).toBe(400);
});
