import { fhirRequest, withoutMeta } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.stop();
});

const patient = {
  resourceType: 'Patient',
  identifier: [{ system: 'http://example.org/mrn', value: 'crud-1' }],
  name: [{ family: 'Chalmers', given: ['Peter', 'James'] }],
  gender: 'male',
  birthDate: '1974-12-25',
  text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Peter Chalmers</div>' },
};

describe('create, read, update, delete', () => {
  test('create assigns an id and version 1 and answers 201 with Location, ETag and Last-Modified', async () => {
    const res = await fhirRequest('POST', `${server.base}/Patient`, { body: { ...patient, id: 'ignored-client-id' } });
    expect(res.status).toBe(201);
    expect(res.body.id).toMatch(/^[A-Za-z0-9\-.]{1,64}$/);
    expect(res.body.id).not.toBe('ignored-client-id');
    expect(res.body.meta.versionId).toBe('1');
    expect(new Date(res.body.meta.lastUpdated).getTime()).toBeGreaterThan(Date.now() - 60000);
    expect(res.headers.get('location')).toBe(`${server.base}/Patient/${res.body.id}/_history/1`);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(new Date(res.headers.get('last-modified') as string).getTime()).not.toBeNaN();
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    expect(withoutMeta({ ...res.body, id: undefined })).toEqual({ ...patient, id: undefined });
  });

  test('read returns what was created, with ETag and Last-Modified', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
    const read = await fhirRequest('GET', `${server.base}/Patient/${created.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(created.body);
    expect(read.headers.get('etag')).toBe('W/"1"');
    expect(read.headers.get('last-modified')).toBe(new Date(created.body.meta.lastUpdated).toUTCString());
  });

  test('update creates version 2, and vread still returns version 1', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
    const id = created.body.id;
    const updated = await fhirRequest('PUT', `${server.base}/Patient/${id}`, {
      body: { ...created.body, gender: 'other' },
    });
    expect(updated.status).toBe(200);
    expect(updated.body.meta.versionId).toBe('2');
    expect(updated.headers.get('etag')).toBe('W/"2"');
    expect(updated.headers.get('location')).toBe(`${server.base}/Patient/${id}/_history/2`);
    const v1 = await fhirRequest('GET', `${server.base}/Patient/${id}/_history/1`);
    expect(v1.status).toBe(200);
    expect(v1.body.gender).toBe('male');
    const v2 = await fhirRequest('GET', `${server.base}/Patient/${id}/_history/2`);
    expect(v2.body.gender).toBe('other');
    expect((await fhirRequest('GET', `${server.base}/Patient/${id}/_history/3`)).status).toBe(404);
  });

  test('update with a new client-chosen id creates the resource (update as create) with 201', async () => {
    const res = await fhirRequest('PUT', `${server.base}/Patient/client-chosen-1`, {
      body: { ...patient, id: 'client-chosen-1' },
    });
    expect(res.status).toBe(201);
    expect(res.body.meta.versionId).toBe('1');
    expect((await fhirRequest('GET', `${server.base}/Patient/client-chosen-1`)).status).toBe(200);
  });

  test('update without an id in the body, or with another id than the URL, is 400', async () => {
    const noId = await fhirRequest('PUT', `${server.base}/Patient/abc`, { body: patient });
    expect(noId.status).toBe(400);
    expect(noId.body.resourceType).toBe('OperationOutcome');
    const mismatch = await fhirRequest('PUT', `${server.base}/Patient/abc`, { body: { ...patient, id: 'xyz' } });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.issue[0].expression).toEqual(['Patient.id']);
  });

  test('delete answers 204, a later read is 410 Gone, and history keeps the deletion', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
    const id = created.body.id;
    const del = await fhirRequest('DELETE', `${server.base}/Patient/${id}`);
    expect(del.status).toBe(204);
    expect(del.headers.get('etag')).toBe('W/"2"');
    const read = await fhirRequest('GET', `${server.base}/Patient/${id}`);
    expect(read.status).toBe(410);
    expect(read.body.resourceType).toBe('OperationOutcome');
    const history = await fhirRequest('GET', `${server.base}/Patient/${id}/_history`);
    expect(history.body.entry.map((e: any) => e.request.method)).toEqual(['DELETE', 'POST']);
    expect(history.body.entry[0].resource).toBeUndefined();
    expect((await fhirRequest('GET', `${server.base}/Patient/${id}/_history/2`)).status).toBe(410);
    expect((await fhirRequest('GET', `${server.base}/Patient/${id}/_history/1`)).status).toBe(200);
  });

  test('deleting a deleted or unknown resource succeeds without a new version', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
    await fhirRequest('DELETE', `${server.base}/Patient/${created.body.id}`);
    expect((await fhirRequest('DELETE', `${server.base}/Patient/${created.body.id}`)).status).toBe(204);
    expect((await fhirRequest('DELETE', `${server.base}/Patient/never-was`)).status).toBe(204);
    const history = await fhirRequest('GET', `${server.base}/Patient/${created.body.id}/_history`);
    expect(history.body.entry).toHaveLength(2);
  });

  test('a deleted resource can be brought back by an update, as a new version', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
    const id = created.body.id;
    await fhirRequest('DELETE', `${server.base}/Patient/${id}`);
    const revived = await fhirRequest('PUT', `${server.base}/Patient/${id}`, { body: { ...patient, id } });
    expect(revived.status).toBe(201);
    expect(revived.body.meta.versionId).toBe('3');
  });
});

describe('If-Match and conditional read', () => {
  test('an update with a stale If-Match is 412 and changes nothing', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
    const id = created.body.id;
    const ok = await fhirRequest('PUT', `${server.base}/Patient/${id}`, {
      body: { ...created.body, gender: 'female' },
      headers: { 'If-Match': 'W/"1"' },
    });
    expect(ok.status).toBe(200);
    const stale = await fhirRequest('PUT', `${server.base}/Patient/${id}`, {
      body: { ...created.body, gender: 'unknown' },
      headers: { 'If-Match': 'W/"1"' },
    });
    expect(stale.status).toBe(412);
    expect(stale.body.resourceType).toBe('OperationOutcome');
    expect((await fhirRequest('GET', `${server.base}/Patient/${id}`)).body.gender).toBe('female');
  });

  test('a delete with a stale If-Match is 412', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
    await fhirRequest('PUT', `${server.base}/Patient/${created.body.id}`, { body: created.body });
    const res = await fhirRequest('DELETE', `${server.base}/Patient/${created.body.id}`, {
      headers: { 'If-Match': 'W/"1"' },
    });
    expect(res.status).toBe(412);
  });

  test('If-None-Match with the current ETag answers 304, another ETag 200', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
    const url = `${server.base}/Patient/${created.body.id}`;
    expect((await fhirRequest('GET', url, { headers: { 'If-None-Match': 'W/"1"' } })).status).toBe(304);
    expect((await fhirRequest('GET', url, { headers: { 'If-None-Match': 'W/"7"' } })).status).toBe(200);
  });

  test('If-Modified-Since after the last update answers 304', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
    const url = `${server.base}/Patient/${created.body.id}`;
    const later = new Date(Date.now() + 5000).toUTCString();
    const earlier = new Date(Date.now() - 3600000).toUTCString();
    expect((await fhirRequest('GET', url, { headers: { 'If-Modified-Since': later } })).status).toBe(304);
    expect((await fhirRequest('GET', url, { headers: { 'If-Modified-Since': earlier } })).status).toBe(200);
  });
});

describe('Prefer, _format, _pretty, _summary and _elements', () => {
  test('Prefer: return=minimal answers with no body, return=OperationOutcome with an OperationOutcome', async () => {
    const minimal = await fhirRequest('POST', `${server.base}/Patient`, {
      body: patient,
      headers: { Prefer: 'return=minimal' },
    });
    expect(minimal.status).toBe(201);
    expect(minimal.text).toBe('');
    expect(minimal.headers.get('location')).toMatch(/\/Patient\/[^/]+\/_history\/1$/);
    const oo = await fhirRequest('POST', `${server.base}/Patient`, {
      body: patient,
      headers: { Prefer: 'return=OperationOutcome' },
    });
    expect(oo.status).toBe(201);
    expect(oo.body.resourceType).toBe('OperationOutcome');
    const full = await fhirRequest('POST', `${server.base}/Patient`, {
      body: patient,
      headers: { Prefer: 'return=representation' },
    });
    expect(full.body.resourceType).toBe('Patient');
  });

  test('_format=json and Accept application/json are served as JSON, _format=xml as FHIR XML, _format=turtle is 406', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
    const url = `${server.base}/Patient/${created.body.id}`;
    const json = await fhirRequest('GET', `${url}?_format=json`);
    expect(json.status).toBe(200);
    expect(json.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    const plain = await fhirRequest('GET', url, { headers: { Accept: 'application/json' } });
    expect(plain.headers.get('content-type')).toMatch(/^application\/json/);
    const xml = await fhirRequest('GET', `${url}?_format=xml`);
    expect(xml.status).toBe(200);
    expect(xml.headers.get('content-type')).toMatch(/^application\/fhir\+xml/);
    expect(xml.text).toContain(`<Patient xmlns="http://hl7.org/fhir"><id value="${created.body.id}"/>`);
    const turtle = await fhirRequest('GET', `${url}?_format=ttl`);
    expect(turtle.status).toBe(406);
    expect(turtle.body.resourceType).toBe('OperationOutcome');
  });

  test("Accept with R4's fhirVersion parameter is served; another FHIR version, or neither JSON nor XML, is 406", async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
    const url = `${server.base}/Patient/${created.body.id}`;
    const accept = async (value: string): Promise<number> => (await fhirRequest('GET', url, { headers: { Accept: value } })).status;
    const typeFor = async (value: string): Promise<string | null> => (await fhirRequest('GET', url, { headers: { Accept: value } })).headers.get('content-type');
    // http.html#version-parameter
    expect(await accept('application/fhir+json; fhirVersion=4.0')).toBe(200);
    expect(await accept('application/fhir+json;fhirVersion=4.0.1;q=0.9')).toBe(200);
    expect(await accept('application/fhir+json; fhirVersion=3.0, application/fhir+json; fhirVersion=4.0; q=0.5')).toBe(200);
    // HAPI's client offers XML and JSON alike: JSON is the server's preference.
    expect(await typeFor('application/fhir+xml;q=1.0, application/fhir+json;q=1.0, application/xml+fhir;q=0.9, application/json+fhir;q=0.9')).toMatch(/^application\/fhir\+json/);
    expect(await accept('application/fhir+json; fhirVersion=3.0')).toBe(406);
    expect(await typeFor('application/fhir+xml')).toMatch(/^application\/fhir\+xml/);
    expect(await typeFor('application/fhir+xml; fhirVersion=4.0')).toMatch(/^application\/fhir\+xml/);
    expect(await accept('text/turtle')).toBe(406);
  });

  test('_pretty=true indents the JSON', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
    const res = await fhirRequest('GET', `${server.base}/Patient/${created.body.id}?_pretty=true`);
    expect(res.text).toContain('\n  "resourceType": "Patient"');
    const compact = await fhirRequest('GET', `${server.base}/Patient/${created.body.id}`);
    expect(compact.text).not.toContain('\n');
  });

  test('_summary=true keeps only summary elements and marks the resource SUBSETTED', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, {
      body: { ...patient, contact: [{ name: { family: 'Kin' } }] },
    });
    const res = await fhirRequest('GET', `${server.base}/Patient/${created.body.id}?_summary=true`);
    expect(res.body.name).toEqual(patient.name);
    expect(res.body.contact).toBeUndefined();
    expect(res.body.text).toBeUndefined();
    expect(res.body.meta.tag).toContainEqual(expect.objectContaining({ code: 'SUBSETTED' }));
  });

  test('_summary=data drops the narrative and _summary=text keeps it', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
    const data = await fhirRequest('GET', `${server.base}/Patient/${created.body.id}?_summary=data`);
    expect(data.body.text).toBeUndefined();
    expect(data.body.name).toEqual(patient.name);
    const text = await fhirRequest('GET', `${server.base}/Patient/${created.body.id}?_summary=text`);
    expect(text.body.text).toEqual(patient.text);
    expect(text.body.name).toBeUndefined();
  });

  test('_elements returns the named elements plus id and meta', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
    const res = await fhirRequest('GET', `${server.base}/Patient/${created.body.id}?_elements=gender,birthDate`);
    expect(Object.keys(res.body).sort()).toEqual(['birthDate', 'gender', 'id', 'meta', 'resourceType']);
  });
});

test('a read returns resourceType first and the elements in FHIR definition order', async () => {
  const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
  const read = await fhirRequest('GET', `${server.base}/Patient/${created.body.id}`);
  expect(Object.keys(read.body)).toEqual(['resourceType', 'id', 'meta', 'text', 'identifier', 'name', 'gender', 'birthDate']);
});
