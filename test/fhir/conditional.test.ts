import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.stop();
});

function patient(mrn: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { resourceType: 'Patient', identifier: [{ system: 'http://example.org/mrn', value: mrn }], ...extra };
}

async function countWithIdentifier(mrn: string): Promise<number> {
  const res = await fhirRequest('GET', `${server.base}/Patient?identifier=http://example.org/mrn|${mrn}&_total=accurate`);
  return res.body.total;
}

describe('conditional create (If-None-Exist)', () => {
  test('no match creates (201), one match returns it (200) without creating, several is 412', async () => {
    const first = await fhirRequest('POST', `${server.base}/Patient`, {
      body: patient('cc-1'),
      headers: { 'If-None-Exist': 'identifier=http://example.org/mrn|cc-1' },
    });
    expect(first.status).toBe(201);
    const again = await fhirRequest('POST', `${server.base}/Patient`, {
      body: patient('cc-1', { active: true }),
      headers: { 'If-None-Exist': 'identifier=http://example.org/mrn|cc-1' },
    });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect(again.body.active).toBeUndefined();
    expect(await countWithIdentifier('cc-1')).toBe(1);

    await fhirRequest('POST', `${server.base}/Patient`, { body: patient('cc-1') });
    const several = await fhirRequest('POST', `${server.base}/Patient`, {
      body: patient('cc-1'),
      headers: { 'If-None-Exist': 'identifier=http://example.org/mrn|cc-1' },
    });
    expect(several.status).toBe(412);
    expect(several.body.resourceType).toBe('OperationOutcome');
  });

  test('If-None-Exist may name the type before its query, as HL7\'s transaction example does', async () => {
    const first = await fhirRequest('POST', `${server.base}/Patient`, {
      body: patient('cc-3'),
      headers: { 'If-None-Exist': 'Patient?identifier=http://example.org/mrn|cc-3' },
    });
    expect(first.status).toBe(201);
    const again = await fhirRequest('POST', `${server.base}/Patient`, {
      body: patient('cc-3'),
      headers: { 'If-None-Exist': 'Patient?identifier=http://example.org/mrn|cc-3' },
    });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect(await countWithIdentifier('cc-3')).toBe(1);
  });

  test('criteria with an unknown parameter are refused rather than ignored', async () => {
    const res = await fhirRequest('POST', `${server.base}/Patient`, {
      body: patient('cc-2'),
      headers: { 'If-None-Exist': 'no-such-param=1' },
    });
    expect(res.status).toBe(400);
  });
});

describe('conditional update and delete', () => {
  test('conditional update creates on no match, updates the one match, and is 412 on several', async () => {
    const url = `${server.base}/Patient?identifier=http://example.org/mrn|cu-1`;
    const created = await fhirRequest('PUT', url, { body: patient('cu-1') });
    expect(created.status).toBe(201);
    const updated = await fhirRequest('PUT', url, { body: patient('cu-1', { active: false }) });
    expect(updated.status).toBe(200);
    expect(updated.body.id).toBe(created.body.id);
    expect(updated.body.meta.versionId).toBe('2');
    await fhirRequest('POST', `${server.base}/Patient`, { body: patient('cu-1') });
    expect((await fhirRequest('PUT', url, { body: patient('cu-1') })).status).toBe(412);
  });

  test('conditional update with an id in the body that differs from the match is 400', async () => {
    const url = `${server.base}/Patient?identifier=http://example.org/mrn|cu-2`;
    await fhirRequest('PUT', url, { body: patient('cu-2') });
    const res = await fhirRequest('PUT', url, { body: patient('cu-2', { id: 'somebody-else' }) });
    expect(res.status).toBe(400);
  });

  test('conditional delete removes the one match, does nothing on none, and is 412 on several', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient('cd-1') });
    const url = `${server.base}/Patient?identifier=http://example.org/mrn|cd-1`;
    expect((await fhirRequest('DELETE', url)).status).toBe(204);
    expect((await fhirRequest('GET', `${server.base}/Patient/${created.body.id}`)).status).toBe(410);
    expect((await fhirRequest('DELETE', url)).status).toBe(204);
    await fhirRequest('POST', `${server.base}/Patient`, { body: patient('cd-2') });
    await fhirRequest('POST', `${server.base}/Patient`, { body: patient('cd-2') });
    expect((await fhirRequest('DELETE', `${server.base}/Patient?identifier=http://example.org/mrn|cd-2`)).status).toBe(412);
  });
});

describe('concurrency is decided by the database', () => {
  test('thirty concurrent conditional creates with the same If-None-Exist leave exactly one resource', async () => {
    const results = await Promise.all(
      Array.from({ length: 30 }, () =>
        fhirRequest('POST', `${server.base}/Patient`, {
          body: patient('race-1'),
          headers: { 'If-None-Exist': 'identifier=http://example.org/mrn|race-1' },
        })
      )
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(29);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect(await countWithIdentifier('race-1')).toBe(1);
  });

  test('two concurrent updates with the same If-Match: exactly one succeeds, the other is 412', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient('race-2') });
    const url = `${server.base}/Patient/${created.body.id}`;
    for (let round = 0; round < 5; round++) {
      const current = await fhirRequest('GET', url);
      const etag = current.headers.get('etag') as string;
      const results = await Promise.all(
        ['male', 'female'].map((gender) =>
          fhirRequest('PUT', url, { body: { ...current.body, gender }, headers: { 'If-Match': etag } })
        )
      );
      expect(results.map((r) => r.status).sort()).toEqual([200, 412]);
    }
    expect((await fhirRequest('GET', url)).body.meta.versionId).toBe('6');
  });

  test('concurrent updates that create the same new id leave one resource with consecutive versions', async () => {
    const url = `${server.base}/Patient/race-create`;
    const results = await Promise.all(
      Array.from({ length: 10 }, () => fhirRequest('PUT', url, { body: { ...patient('race-3'), id: 'race-create' } }))
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 200)).toHaveLength(9);
    const versions = results.map((r) => Number(r.body.meta.versionId)).sort((a, b) => a - b);
    expect(versions).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});
