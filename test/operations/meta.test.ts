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

test('$meta-add adds profiles, tags and labels as sets (system and code decide) to the current version, creating no new version; adding nothing new writes nothing', async () => {
  const created = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', active: true, meta: { tag: [TAG_A] } } });
  const res = await fhirRequest('POST', `${server.base}/Patient/${created.body.id}/$meta-add`, {
    body: withMeta({ profile: [PROFILE], tag: [{ ...TAG_A, display: 'other display' }, TAG_B], security: [LABEL] }),
  });
  expect(res.status).toBe(200);
  const meta = returned(res.body);
  expect(meta.versionId).toBe('1');
  expect(meta.lastUpdated).toBe(created.body.meta.lastUpdated);
  expect(meta.profile).toEqual([PROFILE]);
  expect(meta.tag).toEqual([TAG_A, TAG_B]);
  expect(meta.security).toEqual([LABEL]);
  const read = await fhirRequest('GET', `${server.base}/Patient/${created.body.id}`);
  expect(read.body.active).toBe(true);
  expect(read.body.meta).toMatchObject({ versionId: '1', lastUpdated: created.body.meta.lastUpdated, tag: [TAG_A, TAG_B], security: [LABEL] });
  expect(read.headers.get('etag')).toBe('W/"1"');
  const history = await fhirRequest('GET', `${server.base}/Patient/${created.body.id}/_history`);
  expect(history.body.entry).toHaveLength(1);
  expect(history.body.entry[0].resource.meta.tag).toEqual([TAG_A, TAG_B]);
  expect((await fhirRequest('GET', `${server.base}/Patient/${created.body.id}/_history/1`)).body.meta.security).toEqual([LABEL]);
  const again = await fhirRequest('POST', `${server.base}/Patient/${created.body.id}/$meta-add`, { body: withMeta({ tag: [TAG_B] }) });
  expect(returned(again.body)).toMatchObject({ versionId: '1', tag: [TAG_A, TAG_B] });
});

test('labels changed in place are searchable at once, and the ones removed no longer match', async () => {
  const tag = { system: 'urn:tags:search', code: `s${Date.now()}` };
  const created = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient' } });
  const search = async (query: string) =>
    ((await fhirRequest('GET', `${server.base}/Patient?${query}`)).body.entry ?? []).map((e: any) => e.resource.id);
  expect(await search(`_tag=${tag.system}|${tag.code}`)).toEqual([]);
  await fhirRequest('POST', `${server.base}/Patient/${created.body.id}/$meta-add`, { body: withMeta({ tag: [tag], security: [LABEL], profile: [PROFILE] }) });
  expect(await search(`_tag=${tag.system}|${tag.code}`)).toEqual([created.body.id]);
  expect(await search(`_security=${LABEL.system}|${LABEL.code}&_id=${created.body.id}`)).toEqual([created.body.id]);
  expect(await search(`_profile=${PROFILE}&_id=${created.body.id}`)).toEqual([created.body.id]);
  await fhirRequest('POST', `${server.base}/Patient/${created.body.id}/$meta-delete`, { body: withMeta({ tag: [tag] }) });
  expect(await search(`_tag=${tag.system}|${tag.code}`)).toEqual([]);
  expect(await search(`_security=${LABEL.system}|${LABEL.code}&_id=${created.body.id}`)).toEqual([created.body.id]);
});

test('on _history/[vid], $meta-add and $meta-delete change that older version only, which keeps its content and versionId', async () => {
  const created = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', gender: 'female', meta: { tag: [TAG_A] } } });
  const id = created.body.id;
  await fhirRequest('PUT', `${server.base}/Patient/${id}`, { body: { ...created.body, gender: 'male' } });
  const res = await fhirRequest('POST', `${server.base}/Patient/${id}/_history/1/$meta-add`, { body: withMeta({ tag: [TAG_B] }) });
  expect(res.status).toBe(200);
  expect(returned(res.body)).toMatchObject({ versionId: '1', tag: [TAG_A, TAG_B] });
  const first = (await fhirRequest('GET', `${server.base}/Patient/${id}/_history/1`)).body;
  expect(first).toMatchObject({ gender: 'female', meta: { versionId: '1', lastUpdated: created.body.meta.lastUpdated, tag: [TAG_A, TAG_B] } });
  const current = (await fhirRequest('GET', `${server.base}/Patient/${id}`)).body;
  expect(current).toMatchObject({ gender: 'male', meta: { versionId: '2', tag: [TAG_A] } });
  const removed = await fhirRequest('POST', `${server.base}/Patient/${id}/_history/1/$meta-delete`, { body: withMeta({ tag: [TAG_A] }) });
  expect(returned(removed.body).tag).toEqual([TAG_B]);
  expect((await fhirRequest('GET', `${server.base}/Patient/${id}/_history`)).body.entry.map((e: any) => e.resource.meta.tag)).toEqual([[TAG_A], [TAG_B]]);
  // The current version named by its versionId is the current version.
  await fhirRequest('POST', `${server.base}/Patient/${id}/_history/2/$meta-add`, { body: withMeta({ security: [LABEL] }) });
  expect((await fhirRequest('GET', `${server.base}/Patient/${id}`)).body.meta).toMatchObject({ versionId: '2', security: [LABEL] });
  expect((await fhirRequest('POST', `${server.base}/Patient/${id}/_history/9/$meta-add`, { body: withMeta({ tag: [TAG_B] }) })).status).toBe(404);
  await fhirRequest('DELETE', `${server.base}/Patient/${id}`);
  expect((await fhirRequest('POST', `${server.base}/Patient/${id}/$meta-add`, { body: withMeta({ tag: [TAG_B] }) })).status).toBe(410);
});

test('concurrent $meta-add calls on one resource all land, each tag once, on the same version', async () => {
  const created = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient' } });
  const tags = Array.from({ length: 12 }, (_, i) => ({ system: 'urn:tags:race', code: `t${i}` }));
  const answers = await Promise.all(tags.map((tag) => fhirRequest('POST', `${server.base}/Patient/${created.body.id}/$meta-add`, { body: withMeta({ tag: [tag] }) })));
  expect(answers.map((a) => a.status)).toEqual(tags.map(() => 200));
  const meta = (await fhirRequest('GET', `${server.base}/Patient/${created.body.id}`)).body.meta;
  expect(meta.versionId).toBe('1');
  expect(meta.tag.map((t: any) => t.code).sort()).toEqual(tags.map((t) => t.code).sort());
});

test('a profile added is checked like a write: content that does not conform is refused and nothing changes', async () => {
  const created = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient' } });
  const res = await fhirRequest('POST', `${server.base}/Patient/${created.body.id}/$meta-add`, {
    body: withMeta({ profile: ['http://hl7.org/fhir/StructureDefinition/vitalsigns'] }),
  });
  expect(res.status).toBeGreaterThanOrEqual(400);
  expect(res.status).toBeLessThan(500);
  expect(res.body.resourceType).toBe('OperationOutcome');
  expect((await fhirRequest('GET', `${server.base}/Patient/${created.body.id}`)).body.meta.profile).toBeUndefined();
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
