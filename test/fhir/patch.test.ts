import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.stop();
});

const PATCH = { 'Content-Type': 'application/json-patch+json' };

async function createPatient(): Promise<any> {
  const res = await fhirRequest('POST', `${server.base}/Patient`, {
    body: { resourceType: 'Patient', active: true, name: [{ family: 'Patchy' }] },
  });
  return res.body;
}

test('a JSON Patch is applied as a new version', async () => {
  const p = await createPatient();
  const res = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify([
      { op: 'replace', path: '/active', value: false },
      { op: 'add', path: '/name/0/given', value: ['Pat'] },
    ]),
    headers: PATCH,
  });
  expect(res.status).toBe(200);
  expect(res.body.active).toBe(false);
  expect(res.body.name[0].given).toEqual(['Pat']);
  expect(res.body.meta.versionId).toBe('2');
  expect(res.headers.get('etag')).toBe('W/"2"');
});

test('a patch whose result is invalid is refused with the element path and nothing changes', async () => {
  const p = await createPatient();
  const res = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify([{ op: 'add', path: '/birthDate', value: 'not-a-date' }]),
    headers: PATCH,
  });
  expect(res.status).toBe(400);
  expect(res.body.resourceType).toBe('OperationOutcome');
  expect(JSON.stringify(res.body.issue.map((i: any) => i.expression))).toContain('birthDate');
  expect((await fhirRequest('GET', `${server.base}/Patient/${p.id}`)).body.meta.versionId).toBe('1');
});

test('a failing JSON Patch test operation is 422, a malformed patch is 400', async () => {
  const p = await createPatient();
  const failedTest = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify([{ op: 'test', path: '/active', value: false }]),
    headers: PATCH,
  });
  expect(failedTest.status).toBe(422);
  const malformed = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify([{ op: 'frobnicate', path: '/active' }]),
    headers: PATCH,
  });
  expect(malformed.status).toBe(400);
  const notArray = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify({ op: 'replace', path: '/active', value: false }),
    headers: PATCH,
  });
  expect(notArray.status).toBe(400);
});

test('a patch may not change the id or the resourceType', async () => {
  const p = await createPatient();
  const res = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify([{ op: 'replace', path: '/id', value: 'other' }]),
    headers: PATCH,
  });
  expect(res.status).toBe(422);
});

test('a patch with a stale If-Match is 412', async () => {
  const p = await createPatient();
  await fhirRequest('PUT', `${server.base}/Patient/${p.id}`, { body: p });
  const res = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify([{ op: 'replace', path: '/active', value: false }]),
    headers: { ...PATCH, 'If-Match': 'W/"1"' },
  });
  expect(res.status).toBe(412);
});

test('PATCH in another media type is 415, a JSON Patch sent as FHIR JSON 400, on a missing resource 404, without a body 400', async () => {
  const p = await createPatient();
  const wrongType = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify([{ op: 'replace', path: '/active', value: false }]),
    headers: { 'Content-Type': 'text/plain' },
  });
  expect(wrongType.status).toBe(415);
  const notParameters = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
    rawBody: JSON.stringify([{ op: 'replace', path: '/active', value: false }]),
    headers: { 'Content-Type': 'application/fhir+json' },
  });
  expect(notParameters.status).toBe(400);
  expect(notParameters.body.issue[0].diagnostics).toMatch(/FHIRPath Patch/);
  const missing = await fhirRequest('PATCH', `${server.base}/Patient/does-not-exist`, {
    rawBody: JSON.stringify([{ op: 'replace', path: '/active', value: false }]),
    headers: PATCH,
  });
  expect(missing.status).toBe(404);
  const empty = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, { rawBody: '', headers: PATCH });
  expect(empty.status).toBe(400);
  expect(empty.body.issue[0].diagnostics).toMatch(/needs a patch in its body/);
});

describe('FHIRPath Patch (fhirpatch.html) over HTTP', () => {
  const FHIR = { 'Content-Type': 'application/fhir+json' };
  const operation = (...part: object[]): object => ({ name: 'operation', part });

  test('a Parameters document is applied as a new version, and the CapabilityStatement offers it', async () => {
    const p = await createPatient();
    const res = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
      body: {
        resourceType: 'Parameters',
        parameter: [
          operation({ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Patient.active' }, { name: 'value', valueBoolean: false }),
          operation({ name: 'type', valueCode: 'add' }, { name: 'path', valueString: 'Patient' }, { name: 'name', valueString: 'birthDate' }, { name: 'value', valueDate: '1980-02-03' }),
          operation({ name: 'type', valueCode: 'add' }, { name: 'path', valueString: 'Patient.name[0]' }, { name: 'name', valueString: 'given' }, { name: 'value', valueString: 'Pat' }),
        ],
      },
      headers: FHIR,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('W/"2"');
    expect(res.body).toMatchObject({ active: false, birthDate: '1980-02-03', name: [{ family: 'Patchy', given: ['Pat'] }] });
    const metadata = await fhirRequest('GET', `${server.base}/metadata`);
    expect(metadata.body.patchFormat).toEqual(expect.arrayContaining(['application/json-patch+json', 'application/fhir+json']));
  });

  test('a result that is not valid is refused (400) and nothing changes; a path that selects nothing to replace is 422', async () => {
    const p = await createPatient();
    const invalid = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
      body: { resourceType: 'Parameters', parameter: [operation({ name: 'type', valueCode: 'add' }, { name: 'path', valueString: 'Patient' }, { name: 'name', valueString: 'gender' }, { name: 'value', valueCode: 'robot' })] },
      headers: FHIR,
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body.issue[0].expression).toEqual(['Patient.gender']);
    const nothing = await fhirRequest('PATCH', `${server.base}/Patient/${p.id}`, {
      body: { resourceType: 'Parameters', parameter: [operation({ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Patient.birthDate' }, { name: 'value', valueDate: '2000-01-01' })] },
      headers: FHIR,
    });
    expect(nothing.status).toBe(422);
    expect((await fhirRequest('GET', `${server.base}/Patient/${p.id}`)).body.meta.versionId).toBe('1');
  });

  test('a transaction PATCH entry may carry a FHIRPath Patch Parameters, whose references to other entries are rewritten', async () => {
    const p = await createPatient();
    const res = await fhirRequest('POST', server.base, {
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:5e0c7f3a-2b6e-4c1e-9d0a-6f1b2c3d4e5f', resource: { resourceType: 'Organization', name: 'Patch Clinic' }, request: { method: 'POST', url: 'Organization' } },
          {
            resource: {
              resourceType: 'Parameters',
              parameter: [
                operation(
                  { name: 'type', valueCode: 'add' },
                  { name: 'path', valueString: 'Patient' },
                  { name: 'name', valueString: 'managingOrganization' },
                  { name: 'value', valueReference: { reference: 'urn:uuid:5e0c7f3a-2b6e-4c1e-9d0a-6f1b2c3d4e5f' } }
                ),
              ],
            },
            request: { method: 'PATCH', url: `Patient/${p.id}` },
          },
        ],
      },
    });
    expect(res.status).toBe(200);
    const organization = res.body.entry[0].response.location.match(/Organization\/([^/]+)/)[1];
    const patched = await fhirRequest('GET', `${server.base}/Patient/${p.id}`);
    expect(patched.body.managingOrganization).toEqual({ reference: `Organization/${organization}` });
  });
});

describe('conditional patch (PATCH [type]?criteria, http.html#patch)', () => {
  const body = JSON.stringify([{ op: 'replace', path: '/active', value: false }]);
  const put = (id: string, identifier: string) =>
    fhirRequest('PUT', `${server.base}/Patient/${id}`, { body: { resourceType: 'Patient', id, active: true, identifier: [{ system: 'urn:cp', value: identifier }] } });

  test('patches the one match; no match is 404, several 412, no criteria 400', async () => {
    await put('cp-1', 'one');
    await put('cp-2', 'two');
    await put('cp-3', 'two');
    const one = await fhirRequest('PATCH', `${server.base}/Patient?identifier=urn:cp|one`, { rawBody: body, headers: PATCH });
    expect(one.status).toBe(200);
    expect([one.body.id, one.body.active, one.body.meta.versionId]).toEqual(['cp-1', false, '2']);
    expect(one.headers.get('location')).toMatch(/Patient\/cp-1\/_history\/2$/);
    expect((await fhirRequest('GET', `${server.base}/Patient/cp-1`)).body.active).toBe(false);
    expect((await fhirRequest('PATCH', `${server.base}/Patient?identifier=urn:cp|none`, { rawBody: body, headers: PATCH })).status).toBe(404);
    expect((await fhirRequest('PATCH', `${server.base}/Patient?identifier=urn:cp|two`, { rawBody: body, headers: PATCH })).status).toBe(412);
    for (const id of ['cp-2', 'cp-3']) expect((await fhirRequest('GET', `${server.base}/Patient/${id}`)).body.meta.versionId).toBe('1');
    expect((await fhirRequest('PATCH', `${server.base}/Patient`, { rawBody: body, headers: PATCH })).status).toBe(400);
    // If-Match applies to the match.
    const stale = await fhirRequest('PATCH', `${server.base}/Patient?identifier=urn:cp|one`, { rawBody: body, headers: { ...PATCH, 'If-Match': 'W/"1"' } });
    expect(stale.status).toBe(412);
  });

  test('is recorded as a patch, and refused on AuditEvent', async () => {
    await put('cp-4', 'four');
    const res = await fhirRequest('PATCH', `${server.base}/Patient?identifier=urn:cp|four`, { rawBody: body, headers: PATCH });
    expect(res.status).toBe(200);
    const events = await fhirRequest('GET', `${server.base}/AuditEvent?entity=Patient/cp-4&subtype=patch`);
    expect(events.body.entry?.length).toBe(1);
    expect(events.body.entry[0].resource.action).toBe('U');
    expect((await fhirRequest('PATCH', `${server.base}/AuditEvent?_id=x`, { rawBody: body, headers: PATCH })).status).toBe(405);
  });
});
