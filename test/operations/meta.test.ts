import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

/** $meta, $meta-add, $meta-delete (https://hl7.org/fhir/R4/resource-operations.html). */

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.stop();
});

const TAG_A = { system: 'urn:tags', code: 'a', display: 'A' };
const TAG_B = { system: 'urn:tags', code: 'b' };
const LABEL = { system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' };
const PROFILE = 'http://example.org/StructureDefinition/my-patient';

const withMeta = (meta: object) => ({ resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: meta }] });
const returned = (body: any) => body.parameter.find((p: { name: string }) => p.name === 'return').valueMeta;

test('$meta answers the meta of the current version, and of an older one on _history', async () => {
  const created = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', meta: { tag: [TAG_A] } } });
  await fhirRequest('PUT', `${server.base}/Patient/${created.body.id}`, { body: { ...created.body, meta: { tag: [TAG_B] } } });
  const current = await fhirRequest('GET', `${server.base}/Patient/${created.body.id}/$meta`);
  expect(current.status).toBe(200);
  expect(current.body.resourceType).toBe('Parameters');
  expect(returned(current.body)).toMatchObject({ versionId: '2', tag: [TAG_B] });
  const first = await fhirRequest('GET', `${server.base}/Patient/${created.body.id}/_history/1/$meta`);
  expect(returned(first.body)).toMatchObject({ versionId: '1', tag: [TAG_A] });
  expect((await fhirRequest('GET', `${server.base}/Patient/nobody/$meta`)).status).toBe(404);
});

test('$meta-add adds profiles, tags and labels as sets (system and code decide), as a new version; adding nothing new writes nothing', async () => {
  const created = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', active: true, meta: { tag: [TAG_A] } } });
  const res = await fhirRequest('POST', `${server.base}/Patient/${created.body.id}/$meta-add`, {
    body: withMeta({ profile: [PROFILE], tag: [{ ...TAG_A, display: 'other display' }, TAG_B], security: [LABEL] }),
  });
  expect(res.status).toBe(200);
  const meta = returned(res.body);
  expect(meta.versionId).toBe('2');
  expect(meta.profile).toEqual([PROFILE]);
  expect(meta.tag).toEqual([TAG_A, TAG_B]);
  expect(meta.security).toEqual([LABEL]);
  const read = await fhirRequest('GET', `${server.base}/Patient/${created.body.id}`);
  expect(read.body.active).toBe(true);
  expect(read.body.meta.tag).toEqual([TAG_A, TAG_B]);
  const again = await fhirRequest('POST', `${server.base}/Patient/${created.body.id}/$meta-add`, { body: withMeta({ tag: [TAG_B] }) });
  expect(returned(again.body).versionId).toBe('2');
});

test('$meta-delete removes what it names and leaves the rest', async () => {
  const created = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', meta: { profile: [PROFILE], tag: [TAG_A, TAG_B], security: [LABEL] } } });
  const res = await fhirRequest('POST', `${server.base}/Patient/${created.body.id}/$meta-delete`, { body: withMeta({ profile: [PROFILE], tag: [{ system: 'urn:tags', code: 'a' }] }) });
  expect(res.status).toBe(200);
  const meta = returned(res.body);
  expect(meta.profile).toBeUndefined();
  expect(meta.tag).toEqual([TAG_B]);
  expect(meta.security).toEqual([LABEL]);
  expect((await fhirRequest('GET', `${server.base}/Patient/${created.body.id}`)).body.meta.tag).toEqual([TAG_B]);
});

test('a body without a "meta" parameter is 400; AuditEvents refuse $meta-add; the CapabilityStatement lists the operations', async () => {
  const created = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient' } });
  expect((await fhirRequest('POST', `${server.base}/Patient/${created.body.id}/$meta-add`, { body: { resourceType: 'Parameters' } })).status).toBe(400);
  const event = await fhirRequest('GET', `${server.base}/AuditEvent?_count=1`);
  const eventId = event.body.entry[0].resource.id;
  expect((await fhirRequest('POST', `${server.base}/AuditEvent/${eventId}/$meta-add`, { body: withMeta({ tag: [TAG_A] }) })).status).toBe(405);
  const metadata = (await fhirRequest('GET', `${server.base}/metadata`)).body;
  const patient = metadata.rest[0].resource.find((r: { type: string }) => r.type === 'Patient');
  expect(patient.operation).toEqual(
    expect.arrayContaining([
      { name: 'meta', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-meta' },
      { name: 'meta-add', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-meta-add' },
      { name: 'meta-delete', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-meta-delete' },
    ])
  );
});

describe('$meta at type and system level', () => {
  const labelKeys = (meta: any) => ({
    profile: [...new Set<string>(meta.profile ?? [])].sort(),
    tag: [...new Set<string>((meta.tag ?? []).map((c: any) => `${c.system}|${c.code}`))].sort(),
    security: [...new Set<string>((meta.security ?? []).map((c: any) => `${c.system}|${c.code}`))].sort(),
  });
  /** The oracle: every resource a search finds, its labels collected here. */
  async function labelsBySearch(url: string, headers: Record<string, string> = {}): Promise<ReturnType<typeof labelKeys>> {
    const all = { profile: [] as string[], tag: [] as any[], security: [] as any[] };
    let next: string | undefined = url;
    while (next) {
      const page: any = (await fhirRequest('GET', next, { headers })).body;
      for (const e of page.entry ?? []) {
        all.profile.push(...(e.resource.meta?.profile ?? []));
        all.tag.push(...(e.resource.meta?.tag ?? []));
        all.security.push(...(e.resource.meta?.security ?? []));
      }
      next = page.link?.find((l: any) => l.relation === 'next')?.url;
    }
    return labelKeys(all);
  }

  test('each profile, tag and security label in use is listed once, for a type or for every type, as searching everything finds them; a deleted resource counts no more', async () => {
    const write = (resource: object) => fhirRequest('POST', `${server.base}/${(resource as any).resourceType}`, { body: resource });
    await write({ resourceType: 'Patient', meta: { tag: [TAG_A], profile: [PROFILE] } });
    await write({ resourceType: 'Patient', meta: { tag: [{ ...TAG_A, display: 'another display' }, TAG_B], security: [LABEL] } });
    await write({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, meta: { tag: [{ system: 'urn:obs', code: 'o' }] } });
    await write({ resourceType: 'Basic', code: { text: 'b' }, meta: { profile: ['http://example.org/StructureDefinition/basic'] } });
    const gone = await write({ resourceType: 'Patient', meta: { tag: [{ system: 'urn:tags', code: 'deleted' }] } });
    await fhirRequest('DELETE', `${server.base}/Patient/${gone.body.id}`);

    for (const type of ['Patient', 'Observation', 'Basic', 'Encounter']) {
      for (const method of ['GET', 'POST']) {
        const res = await fhirRequest(method, `${server.base}/${type}/$meta`, method === 'POST' ? { body: { resourceType: 'Parameters' } } : {});
        expect(res.status).toBe(200);
        expect(labelKeys(returned(res.body))).toEqual(await labelsBySearch(`${server.base}/${type}?_count=500`));
      }
    }
    const patients = returned((await fhirRequest('GET', `${server.base}/Patient/$meta`)).body);
    expect(patients.tag.map((c: any) => c.code)).not.toContain('deleted');
    expect(patients.tag.find((c: any) => c.code === 'a').display).toMatch(/^(A|another display)$/);
    const everything = await fhirRequest('GET', `${server.base}/$meta`);
    expect(everything.status).toBe(200);
    expect(labelKeys(returned(everything.body))).toEqual(await labelsBySearch(`${server.base}?_count=500`));
    expect(returned(everything.body).tag.map((c: any) => c.code)).toEqual(expect.arrayContaining(['a', 'b', 'o']));
    expect((await fhirRequest('GET', `${server.base}/Wizard/$meta`)).status).toBe(404);
  });

  test('a patient token lists only the labels on what that patient may read', async () => {
    const mine = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', meta: { tag: [{ system: 'urn:who', code: 'mine' }] } } });
    await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', meta: { tag: [{ system: 'urn:who', code: 'theirs' }] } } });
    const token = await mintToken(server, { scope: 'patient/*.rs', userId: 'u-meta', fhirUser: `Patient/${mine.body.id}`, role: 'patient', patient: mine.body.id });
    const headers = { Authorization: `Bearer ${token}` };
    const res = await fhirRequest('GET', `${server.base}/Patient/$meta`, { headers });
    expect(res.status).toBe(200);
    const codes = returned(res.body).tag.map((c: any) => c.code);
    expect(codes).toContain('mine');
    expect(codes).not.toContain('theirs');
    expect(labelKeys(returned(res.body))).toEqual(await labelsBySearch(`${server.base}/Patient?_count=500`, headers));
  });

  test('the CapabilityStatement lists $meta on the server as well as on each type', async () => {
    const metadata = (await fhirRequest('GET', `${server.base}/metadata`)).body;
    expect(metadata.rest[0].operation.map((o: { name: string }) => o.name)).toContain('meta');
  });
});
