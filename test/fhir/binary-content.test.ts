import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.stop();
});

// A PNG signature, then bytes that are not UTF-8: what a text round trip would damage.
const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe, 0x80, 0x41]);

async function upload(method: string, path: string, body: Buffer | string, headers: Record<string, string>): Promise<Response> {
  return fetch(`${server.base}${path}`, { method, headers, body: typeof body === 'string' ? body : new Uint8Array(body) });
}

async function createPng(extraHeaders: Record<string, string> = {}): Promise<string> {
  const res = await upload('POST', '/Binary', png, { 'Content-Type': 'image/png', ...extraHeaders });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

describe('Binary content on the REST API (binary.html#rest)', () => {
  test('a create with a non-FHIR Content-Type stores the body as the Binary content, with its type and X-Security-Context', async () => {
    const id = await createPng({ 'X-Security-Context': 'Patient/example' });
    const stored = await fhirRequest('GET', `${server.base}/Binary/${id}`);
    expect(stored.status).toBe(200);
    expect(stored.body.resourceType).toBe('Binary');
    expect(stored.body.contentType).toBe('image/png');
    expect(stored.body.securityContext).toEqual({ reference: 'Patient/example' });
    expect(Buffer.from(stored.body.data, 'base64')).toEqual(png);
  });

  test('a read without Accept, or with a wildcard, answers the content itself in its own media type', async () => {
    const id = await createPng({ 'X-Security-Context': 'Patient/example' });
    for (const headers of [{}, { Accept: '*/*' }, { Accept: 'image/*' }, { Accept: 'image/png, application/fhir+xml;q=0.5' }] as Record<string, string>[]) {
      const res = await fetch(`${server.base}/Binary/${id}`, { headers });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(res.headers.get('etag')).toBe('W/"1"');
      expect(res.headers.get('x-security-context')).toBe('Patient/example');
      expect(Buffer.from(await res.arrayBuffer())).toEqual(png);
    }
  });

  test('a read that asks for FHIR JSON (Accept or _format) answers the Binary resource', async () => {
    const id = await createPng();
    for (const [query, headers] of [
      ['', { Accept: 'application/fhir+json' }],
      ['', { Accept: 'application/json' }],
      ['', { Accept: 'application/fhir+json; fhirVersion=4.0' }],
      ['?_format=json', {}],
      ['?_format=application/fhir+json', { Accept: '*/*' }],
    ] as const) {
      const res = await fetch(`${server.base}/Binary/${id}${query}`, { headers });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/json/);
      const body = (await res.json()) as { resourceType: string; id: string };
      expect(body.resourceType).toBe('Binary');
      expect(body.id).toBe(id);
    }
  });

  test('a read whose Accept takes neither FHIR JSON nor the content type is 406 with an OperationOutcome', async () => {
    const id = await createPng();
    const res = await fhirRequest('GET', `${server.base}/Binary/${id}`, { headers: { Accept: 'application/pdf' } });
    expect(res.status).toBe(406);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  test('vread answers each version as its own content; an update with raw content makes a new version', async () => {
    const id = await createPng();
    const updated = await upload('PUT', `/Binary/${id}`, 'plain words', { 'Content-Type': 'text/plain;charset=UTF-8' });
    expect(updated.status).toBe(200);
    expect(((await updated.json()) as { contentType: string }).contentType).toBe('text/plain; charset=UTF-8');
    const v1 = await fetch(`${server.base}/Binary/${id}/_history/1`);
    expect(v1.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await v1.arrayBuffer())).toEqual(png);
    const v2 = await fetch(`${server.base}/Binary/${id}/_history/2`);
    expect(v2.headers.get('content-type')).toBe('text/plain; charset=UTF-8');
    expect(await v2.text()).toBe('plain words');
    const current = await fetch(`${server.base}/Binary/${id}`);
    expect(current.headers.get('etag')).toBe('W/"2"');
  });

  test('a Binary sent as FHIR JSON is still a resource, and a deleted Binary is 410 as any resource', async () => {
    const created = await fhirRequest('POST', `${server.base}/Binary`, {
      body: { resourceType: 'Binary', contentType: 'application/pdf', data: Buffer.from('%PDF-1.4').toString('base64') },
    });
    expect(created.status).toBe(201);
    const native = await fetch(`${server.base}/Binary/${created.body.id}`);
    expect(native.headers.get('content-type')).toBe('application/pdf');
    expect(await native.text()).toBe('%PDF-1.4');
    expect((await fhirRequest('DELETE', `${server.base}/Binary/${created.body.id}`)).status).toBeLessThan(300);
    const gone = await fetch(`${server.base}/Binary/${created.body.id}`);
    expect(gone.status).toBe(410);
    expect(((await gone.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });

  test('other types still refuse a body that is not FHIR JSON (415), and other Accept values still get 406', async () => {
    const res = await upload('POST', '/Patient', 'not json', { 'Content-Type': 'text/plain' });
    expect(res.status).toBe(415);
    const read = await fetch(`${server.base}/Patient/nothing-here`, { headers: { Accept: 'image/png' } });
    expect(read.status).toBe(406);
  });
});
