import { bundle, countWithIdentifier as countAt, postBundle, expectOutcomeNaming, jsonPatchBinary, MRN, patient, useBundleTestServer } from '../support/bundle-requests';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * Conditional create, update and delete, If-Match and PATCH as transaction entries
 * (https://hl7.org/fhir/R4/http.html#trules), and the entry limit.
 */

const { server, post, create, read, countWithIdentifier, locationReference } = useBundleTestServer();

function transaction(entry: unknown[]): Record<string, unknown> {
  return bundle('transaction', entry);
}

function observationAbout(reference: string, mrn: string): Record<string, unknown> {
  return { resourceType: 'Observation', identifier: [{ system: MRN, value: mrn }], status: 'final', code: { text: 'x' }, subject: { reference } };
}

describe('conditional create entries (ifNoneExist)', () => {
  test.each([
    ['as a query', 'identifier=http://example.org/mrn|ine-1'],
    ['as Patient?query, the style of HL7 Bundle-bundle-transaction', 'Patient?identifier=http://example.org/mrn|ine-2'],
  ])('one match (criteria %s) answers 200 with it, writes nothing, and references to its fullUrl point at it', async (_style, criteria) => {
    const mrn = criteria.slice(criteria.lastIndexOf('|') + 1);
    const existing = await create(patient(mrn));
    const fullUrl = `urn:uuid:9a1c3f0e-0000-4000-8000-${mrn.replace(/\D/g, '').padStart(12, '0')}`;
    const res = await post(
      transaction([
        { resource: observationAbout(fullUrl, `${mrn}-obs`), request: { method: 'POST', url: 'Observation' } },
        { fullUrl, resource: patient(mrn, { active: true }), request: { method: 'POST', url: 'Patient', ifNoneExist: criteria } },
      ])
    );
    expect(res.status).toBe(200);
    const matched = res.body.entry[1];
    expect(matched.response.status).toMatch(/^200/);
    expect(matched.response.location).toBe(`${server.base}/Patient/${existing.id}/_history/1`);
    expect(matched.response.etag).toBe('W/"1"');
    expect(matched.resource.active).toBeUndefined();
    expect(await countWithIdentifier('Patient', mrn)).toBe(1);
    const observation = (await read(locationReference(res.body.entry[0].response.location))).body;
    expect(observation.subject.reference).toBe(`Patient/${existing.id}`);
  });

  test('no match creates (201); two entries with the same criteria are one resource', async () => {
    const criteria = `identifier=${MRN}|ine-new`;
    const res = await post(
      transaction([
        { fullUrl: 'urn:uuid:9a1c3f0e-0000-4000-8000-0000000000a1', resource: patient('ine-new'), request: { method: 'POST', url: 'Patient', ifNoneExist: criteria } },
        { fullUrl: 'urn:uuid:9a1c3f0e-0000-4000-8000-0000000000a2', resource: patient('ine-new'), request: { method: 'POST', url: 'Patient', ifNoneExist: criteria } },
        { resource: observationAbout('urn:uuid:9a1c3f0e-0000-4000-8000-0000000000a2', 'ine-new-obs'), request: { method: 'POST', url: 'Observation' } },
      ])
    );
    expect(res.status).toBe(200);
    const [first, second, observation] = res.body.entry;
    expect(first.response.status).toMatch(/^201/);
    expect(second.response.location).toBe(first.response.location);
    expect(await countWithIdentifier('Patient', 'ine-new')).toBe(1);
    expect((await read(locationReference(observation.response.location))).body.subject.reference).toBe(locationReference(first.response.location));
  });

  test('ifNoneExist matching several is 412 for the whole transaction, naming the entry, and nothing is written', async () => {
    await create(patient('ine-several'));
    await create(patient('ine-several'));
    const res = await post(
      transaction([
        { resource: patient('ine-several-victim'), request: { method: 'POST', url: 'Patient' } },
        { resource: patient('ine-several'), request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN}|ine-several` } },
      ])
    );
    expect(res.status).toBe(412);
    expectOutcomeNaming(res.body, 1);
    expect(await countWithIdentifier('Patient', 'ine-several')).toBe(2);
    expect(await countWithIdentifier('Patient', 'ine-several-victim')).toBe(0);
  });
});

describe('conditional update and delete entries', () => {
  test('PUT Type?criteria updates the one match, creates when none, and references to its fullUrl point at the result', async () => {
    const existing = await create(patient('cu-match'));
    const res = await post(
      transaction([
        {
          fullUrl: 'urn:uuid:2f0d1e5c-0000-4000-8000-0000000000b1',
          resource: patient('cu-match', { gender: 'other' }),
          request: { method: 'PUT', url: `Patient?identifier=${MRN}|cu-match` },
        },
        {
          fullUrl: 'urn:uuid:2f0d1e5c-0000-4000-8000-0000000000b2',
          resource: patient('cu-none', { gender: 'male' }),
          request: { method: 'PUT', url: `Patient?identifier=${MRN}|cu-none` },
        },
        { resource: observationAbout('urn:uuid:2f0d1e5c-0000-4000-8000-0000000000b1', 'cu-obs-1'), request: { method: 'POST', url: 'Observation' } },
        { resource: observationAbout('urn:uuid:2f0d1e5c-0000-4000-8000-0000000000b2', 'cu-obs-2'), request: { method: 'POST', url: 'Observation' } },
      ])
    );
    expect(res.status).toBe(200);
    const [updated, created, obs1, obs2] = res.body.entry;
    expect(updated.response.status).toMatch(/^200/);
    expect(updated.response.location).toBe(`${server.base}/Patient/${existing.id}/_history/2`);
    expect(updated.response.etag).toBe('W/"2"');
    expect((await read(`Patient/${existing.id}`)).body.gender).toBe('other');
    expect(created.response.status).toMatch(/^201/);
    expect(created.response.etag).toBe('W/"1"');
    const createdAt = locationReference(created.response.location);
    expect((await read(createdAt)).body.gender).toBe('male');
    expect(await countWithIdentifier('Patient', 'cu-match')).toBe(1);
    expect(await countWithIdentifier('Patient', 'cu-none')).toBe(1);
    expect((await read(locationReference(obs1.response.location))).body.subject.reference).toBe(`Patient/${existing.id}`);
    expect((await read(locationReference(obs2.response.location))).body.subject.reference).toBe(createdAt);
  });

  test('DELETE Type?criteria deletes the one match and succeeds on none', async () => {
    const doomed = await create(patient('cd-match'));
    const res = await post(
      transaction([
        { request: { method: 'DELETE', url: `Patient?identifier=${MRN}|cd-match` } },
        { request: { method: 'DELETE', url: `Patient?identifier=${MRN}|cd-nobody` } },
      ])
    );
    expect(res.status).toBe(200);
    for (const entry of res.body.entry) expect(entry.response.status).toMatch(/^20[04]/);
    expect((await read(`Patient/${doomed.id}`)).status).toBe(410);
  });

  test.each([
    ['PUT', (mrn: string) => ({ resource: patient(mrn), request: { method: 'PUT', url: `Patient?identifier=${MRN}|${mrn}` } })],
    ['DELETE', (mrn: string) => ({ request: { method: 'DELETE', url: `Patient?identifier=${MRN}|${mrn}` } })],
    ['PATCH', (mrn: string) => ({ resource: jsonPatchBinary([{ op: 'add', path: '/active', value: true }]), request: { method: 'PATCH', url: `Patient?identifier=${MRN}|${mrn}` } })],
  ])('conditional %s matching several is 412 for the whole transaction, and nothing is written', async (method, entry) => {
    const mrn = `several-${method}`;
    const [a, b] = [await create(patient(mrn)), await create(patient(mrn))];
    const res = await post(transaction([{ resource: patient(`${mrn}-victim`), request: { method: 'POST', url: 'Patient' } }, entry(mrn)]));
    expect(res.status).toBe(412);
    expectOutcomeNaming(res.body, 1);
    for (const p of [a, b]) expect((await read(`Patient/${p.id}`)).body.meta.versionId).toBe('1');
    expect(await countWithIdentifier('Patient', `${mrn}-victim`)).toBe(0);
  });
});

describe('If-Match per entry', () => {
  test('a current If-Match lets PUT, PATCH and DELETE through; one stale If-Match fails the transaction with 412 and undoes the others', async () => {
    const [toPut, toPatch, toDelete] = [await create(patient('im-put')), await create(patient('im-patch')), await create(patient('im-delete'))];
    const entries = (deleteEtag: string) => [
      { resource: patient('im-created'), request: { method: 'POST', url: 'Patient' } },
      { resource: { ...toPut, gender: 'female' }, request: { method: 'PUT', url: `Patient/${toPut.id}`, ifMatch: 'W/"1"' } },
      { resource: jsonPatchBinary([{ op: 'add', path: '/gender', value: 'male' }]), request: { method: 'PATCH', url: `Patient/${toPatch.id}`, ifMatch: 'W/"1"' } },
      { request: { method: 'DELETE', url: `Patient/${toDelete.id}`, ifMatch: deleteEtag } },
    ];

    const stale = await post(transaction(entries('W/"2"')));
    expect(stale.status).toBe(412);
    expectOutcomeNaming(stale.body, 3);
    expect(await countWithIdentifier('Patient', 'im-created')).toBe(0);
    for (const p of [toPut, toPatch, toDelete]) expect((await read(`Patient/${p.id}`)).body).toEqual(p);

    const current = await post(transaction(entries('W/"1"')));
    expect(current.status).toBe(200);
    expect(current.body.entry.map((e: any) => e.response.status.slice(0, 3))).toEqual(['201', '200', '200', '204']);
    expect((await read(`Patient/${toPut.id}`)).body.gender).toBe('female');
    expect((await read(`Patient/${toPatch.id}`)).body.gender).toBe('male');
    expect((await read(`Patient/${toDelete.id}`)).status).toBe(410);
  });

  test('a stale If-Match on a PUT listed after a hundred creates undoes every create', async () => {
    const target = await create(patient('im-late'));
    await fhirRequest('PUT', `${server.base}/Patient/${target.id}`, { body: { ...target, active: true } });
    const creates = Array.from({ length: 100 }, (_, i) => ({ resource: patient(`im-late-${i}`, { name: [{ family: 'Latebatch' }] }), request: { method: 'POST', url: 'Patient' } }));
    const res = await post(transaction([{ resource: { ...target, active: false }, request: { method: 'PUT', url: `Patient/${target.id}`, ifMatch: 'W/"1"' } }, ...creates]));
    expect(res.status).toBe(412);
    expectOutcomeNaming(res.body, 0);
    const left = await fhirRequest('GET', `${server.base}/Patient?family=Latebatch&_summary=count`);
    expect(left.body.total).toBe(0);
    expect((await read(`Patient/${target.id}`)).body.active).toBe(true);
  });
});

describe('PATCH entries', () => {
  test('apply the JSON Patch carried as a Binary of type application/json-patch+json', async () => {
    const target = await create(patient('patch-1', { name: [{ family: 'Before' }] }));
    const res = await post(
      transaction([
        {
          resource: jsonPatchBinary([
            { op: 'replace', path: '/name/0/family', value: 'After' },
            { op: 'add', path: '/birthDate', value: '1970-01-01' },
          ]),
          request: { method: 'PATCH', url: `Patient/${target.id}` },
        },
      ])
    );
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response.etag).toBe('W/"2"');
    const back = (await read(`Patient/${target.id}`)).body;
    expect(back.name[0].family).toBe('After');
    expect(back.birthDate).toBe('1970-01-01');
  });

  test('a PATCH entry whose body is no JSON Patch Binary, or whose patch fails, fails the transaction naming it', async () => {
    const target = await create(patient('patch-bad'));
    for (const resource of [
      patient('patch-bad'),
      { resourceType: 'Binary', contentType: 'application/json', data: Buffer.from('[]').toString('base64') },
      jsonPatchBinary([{ op: 'test', path: '/gender', value: 'unknown' }]),
      jsonPatchBinary([{ op: 'replace', path: '/id', value: 'another-id' }]),
    ]) {
      const res = await post(
        transaction([
          { resource: patient('patch-bad-victim'), request: { method: 'POST', url: 'Patient' } },
          { resource, request: { method: 'PATCH', url: `Patient/${target.id}` } },
        ])
      );
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expectOutcomeNaming(res.body, 1);
    }
    expect(await countWithIdentifier('Patient', 'patch-bad-victim')).toBe(0);
    expect((await read(`Patient/${target.id}`)).body.meta.versionId).toBe('1');
  });
});

describe('BUNDLE_MAX_ENTRIES', () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await startTestServer({ BUNDLE_MAX_ENTRIES: '5' });
  });
  afterAll(async () => {
    await limited.stop();
  });

  test.each(['transaction', 'batch'] as const)('a %s of 5 entries is processed, one of 6 is 400 and writes nothing', async (type) => {
    const entries = (n: number) => Array.from({ length: n }, (_, i) => ({ resource: patient(`limit-${type}-${n}-${i}`), request: { method: 'POST', url: 'Patient' } }));
    const five = await postBundle(limited.base, bundle(type, entries(5)));
    expect(five.status).toBe(200);
    expect(five.body.entry).toHaveLength(5);
    const six = await postBundle(limited.base, bundle(type, entries(6)));
    expect(six.status).toBe(400);
    expect(six.body.resourceType).toBe('OperationOutcome');
    expect(six.body.issue[0].diagnostics).toMatch(/\b5\b/);
    expect(await countAt(limited.base, 'Patient', `limit-${type}-6-0`)).toBe(0);
    expect(await countAt(limited.base, 'Patient', `limit-${type}-5-0`)).toBe(1);
  });
});
