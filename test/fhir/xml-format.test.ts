import { isDeepStrictEqual } from 'node:util';
import { xmlToResource } from '../../server/fhir/xml-to-resource';
import { fhirRequest, withoutMeta } from '../support/fhir-client';
import { readHl7Example } from '../support/hl7-examples';
import { startTestServer, type TestServer } from '../support/test-server';

// FHIR.js (npm `fhir`) writes and reads the XML on the client's side: not our converter.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Fhir } = require('fhir') as { Fhir: new () => { jsonToXml(json: string): string; xmlToJson(xml: string): string } };
const fhirJs = new Fhir();

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.stop();
});

const XML = 'application/fhir+xml';

async function xmlRequest(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; text: string; resource: any }> {
  const res = await fetch(`${server.base}${path}`, {
    method,
    headers: { Accept: XML, ...(body !== undefined ? { 'Content-Type': XML } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : fhirJs.jsonToXml(JSON.stringify(body)),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, resource: text.startsWith('<') ? JSON.parse(fhirJs.xmlToJson(text)) : undefined };
}

const { id: _exampleId, ...example } = readHl7Example('Patient-example.json');
/** HL7's example Patient as FHIR.js reads its own XML of it (it drops the narrative's whitespace): what the client sends. */
const newPatient = JSON.parse(fhirJs.xmlToJson(fhirJs.jsonToXml(JSON.stringify(example))));

test('a resource created in XML is stored as the same resource, answered in XML, and read back in JSON and XML', async () => {
  const created = await xmlRequest('POST', '/Patient', newPatient);
  expect(created.status).toBe(201);
  expect(created.headers.get('content-type')).toMatch(/^application\/fhir\+xml/);
  expect(created.text).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?><Patient xmlns="http:\/\/hl7.org\/fhir"><id value="/);
  const id = created.resource.id as string;
  expect(created.headers.get('location')).toBe(`${server.base}/Patient/${id}/_history/1`);
  const json = await fhirRequest('GET', `${server.base}/Patient/${id}`);
  expect(withoutMeta(json.body)).toEqual({ ...newPatient, id });
  const xml = await xmlRequest('GET', `/Patient/${id}`);
  expect(xml.status).toBe(200);
  expect(withoutMeta(xml.resource)).toEqual({ ...newPatient, id });
  // Our own reader agrees with FHIR.js's on our answer.
  expect(xmlToResource(xml.text)).toEqual(xml.resource);
});

test('_format=xml (and application/xml, text/xml) answer XML whatever Accept says; _pretty=true indents it', async () => {
  const created = await fhirRequest('POST', `${server.base}/Patient`, { body: newPatient });
  const url = `${server.base}/Patient/${created.body.id}`;
  for (const [format, type] of [
    ['xml', 'application/fhir+xml'],
    ['application/fhir+xml', 'application/fhir+xml'],
    ['application/xml', 'application/xml'],
    ['text/xml', 'text/xml'],
  ]) {
    const res = await fetch(`${url}?_format=${encodeURIComponent(format)}`, { headers: { Accept: 'application/fhir+json' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(`${type}; charset=utf-8`);
    expect(withoutMeta(JSON.parse(fhirJs.xmlToJson(await res.text())))).toEqual({ ...newPatient, id: created.body.id });
  }
  const pretty = await (await fetch(`${url}?_format=xml&_pretty=true`)).text();
  expect(pretty).toContain(`\n<Patient xmlns="http://hl7.org/fhir">\n  <id value="${created.body.id}"/>\n  <meta>\n    <versionId value="1"/>`);
});

test('update, conditional create, vread and history answer in XML', async () => {
  const created = await xmlRequest('POST', '/Patient', { resourceType: 'Patient', identifier: [{ system: 'http://example.org/xml', value: 'u1' }], active: true });
  const id = created.resource.id;
  const updated = await xmlRequest('PUT', `/Patient/${id}`, { resourceType: 'Patient', id, identifier: [{ system: 'http://example.org/xml', value: 'u1' }], active: false });
  expect(updated.status).toBe(200);
  expect(updated.resource.active).toBe(false);
  expect(updated.headers.get('etag')).toBe('W/"2"');
  const again = await xmlRequest('POST', '/Patient', { resourceType: 'Patient', active: true }, { 'If-None-Exist': 'identifier=http://example.org/xml|u1' });
  expect(again.status).toBe(200);
  expect(again.resource.id).toBe(id);
  const v1 = await xmlRequest('GET', `/Patient/${id}/_history/1`);
  expect(v1.resource.active).toBe(true);
  const history = await xmlRequest('GET', `/Patient/${id}/_history`);
  expect(history.resource.resourceType).toBe('Bundle');
  expect(history.resource.type).toBe('history');
  expect(history.resource.entry.map((e: any) => e.resource.meta.versionId)).toEqual(['2', '1']);
});

test('a search answers a searchset Bundle in XML, with the same entries as in JSON', async () => {
  const family = `Xml${Date.now()}`;
  for (const given of ['Ann', 'Bob']) await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', name: [{ family, given: [given] }] } });
  const json = await fhirRequest('GET', `${server.base}/Patient?family=${family}&_sort=given`);
  const xml = await xmlRequest('GET', `/Patient?family=${family}&_sort=given`);
  expect(xml.status).toBe(200);
  expect(xml.resource.type).toBe('searchset');
  expect(xml.resource.entry.map((e: any) => e.resource)).toEqual(json.body.entry.map((e: any) => e.resource));
  expect(xml.resource.entry.map((e: any) => e.search.mode)).toEqual(['match', 'match']);
  expect(xml.resource.link.find((l: any) => l.relation === 'self').url).toBe(json.body.link.find((l: any) => l.relation === 'self').url.replace(/_format=[^&]*&?/, ''));
  // POST _search with a form still answers in the negotiated format.
  const form = await fetch(`${server.base}/Patient/_search`, { method: 'POST', headers: { Accept: XML, 'Content-Type': 'application/x-www-form-urlencoded' }, body: `family=${family}` });
  expect(xmlToResource(await form.text())).toMatchObject({ resourceType: 'Bundle', total: 2 });
});

test('a transaction Bundle sent in XML resolves its urn:uuid references and answers a transaction-response in XML', async () => {
  const bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { fullUrl: 'urn:uuid:8f9d6a4e-0000-4000-8000-000000000001', resource: { resourceType: 'Patient', name: [{ family: 'Transact' }] }, request: { method: 'POST', url: 'Patient' } },
      {
        fullUrl: 'urn:uuid:8f9d6a4e-0000-4000-8000-000000000002',
        resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:8f9d6a4e-0000-4000-8000-000000000001' }, valueQuantity: { value: 72.5, unit: 'kg' } },
        request: { method: 'POST', url: 'Observation' },
      },
    ],
  };
  const res = await xmlRequest('POST', '', bundle);
  expect(res.status).toBe(200);
  expect(res.resource.type).toBe('transaction-response');
  expect(res.resource.entry.map((e: any) => e.response.status)).toEqual(['201 Created', '201 Created']);
  const [observationUrl] = /^.*\/Observation\/[^/]+/.exec(res.resource.entry[1].response.location) as RegExpExecArray;
  const observation = await fhirRequest('GET', observationUrl);
  const patientId = /\/Patient\/([^/]+)\//.exec(res.resource.entry[0].response.location)?.[1];
  expect(observation.body.subject.reference).toBe(`Patient/${patientId}`);
  expect(observation.body.valueQuantity.value).toBe(72.5);
});

test('a FHIRPath Patch sent as XML Parameters is applied', async () => {
  const created = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', active: true } });
  const patch = { resourceType: 'Parameters', parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Patient.active' }, { name: 'value', valueBoolean: false }] }] };
  const res = await xmlRequest('PATCH', `/Patient/${created.body.id}`, patch);
  expect(res.status).toBe(200);
  expect(res.resource.active).toBe(false);
});

test('errors are OperationOutcomes in XML for a client that asked for XML, JSON otherwise', async () => {
  const missing = await xmlRequest('GET', '/Patient/not-here');
  expect(missing.status).toBe(404);
  expect(missing.headers.get('content-type')).toMatch(/^application\/fhir\+xml/);
  expect(missing.resource.resourceType).toBe('OperationOutcome');
  const malformed = await xmlRequest('POST', '/Patient', '<Patient xmlns="http://hl7.org/fhir"><active value="true"></Patient>');
  expect(malformed.status).toBe(400);
  expect(malformed.resource.issue[0].diagnostics).toMatch(/not well-formed XML/);
  const unknown = await fhirRequest('POST', `${server.base}/Patient`, { rawBody: '<Patient xmlns="http://hl7.org/fhir"><colour value="blue"/></Patient>', headers: { 'Content-Type': XML } });
  expect(unknown.status).toBe(400);
  expect(unknown.body.issue[0].diagnostics).toMatch(/Patient\.colour is not an element of Patient/);
  // An invalid resource in XML is refused by the same validation as in JSON.
  const invalid = await xmlRequest('POST', '/Patient', '<Patient xmlns="http://hl7.org/fhir"><gender value="robot"/></Patient>');
  expect(invalid.status).toBe(400);
  expect(JSON.stringify(invalid.resource.issue)).toMatch(/Patient\.gender/);
});

test('$validate takes an XML resource and answers its OperationOutcome in XML', async () => {
  const res = await xmlRequest('POST', '/Patient/$validate', newPatient);
  expect(res.status).toBe(200);
  expect(res.resource.resourceType).toBe('OperationOutcome');
  expect(res.resource.issue.every((i: any) => i.severity !== 'error')).toBe(true);
});

test('a Binary is created from FHIR XML and read as a Binary resource in XML when Accept names FHIR XML first', async () => {
  const data = Buffer.from('hello xml').toString('base64');
  const created = await xmlRequest('POST', '/Binary', { resourceType: 'Binary', contentType: 'text/plain', data });
  expect(created.status).toBe(201);
  const read = await xmlRequest('GET', `/Binary/${created.resource.id}`);
  expect(read.resource).toMatchObject({ resourceType: 'Binary', contentType: 'text/plain', data });
  const native = await fetch(`${server.base}/Binary/${created.resource.id}`, { headers: { Accept: 'text/plain, application/fhir+xml;q=0.5' } });
  expect(await native.text()).toBe('hello xml');
});

test('the CapabilityStatement lists XML among its formats and FHIRPath Patch in XML among its patch formats', async () => {
  const res = await xmlRequest('GET', '/metadata');
  expect(res.resource.format).toEqual(expect.arrayContaining(['xml', 'application/fhir+xml', 'json', 'application/fhir+json']));
  expect(res.resource.patchFormat).toEqual(expect.arrayContaining(['application/fhir+xml']));
  expect(isDeepStrictEqual(res.resource, (await fhirRequest('GET', `${server.base}/metadata`)).body)).toBe(true);
});
