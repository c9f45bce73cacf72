import { fhirRequest } from '../support/fhir-client';
import { jsonReferences } from '../support/json-references';
import { readHl7Example } from '../support/hl7-examples';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * `Composition/$document` (R4 composition-operation-document, documents.html) on HL7's
 * example Composition and what it refers to: the expected content is computed here from
 * the example files (the Composition's references, then supporting resources
 * transitively), not from the server's code.
 */
let server: TestServer;
let admin: string;
const FIXTURES = [
  'Composition-example.json',
  'Patient-xcda.json',
  'Practitioner-xcda-author.json',
  'Practitioner-xcda1.json',
  'Encounter-xcda.json',
  'Organization-2.16.840.1.113883.19.5.json',
  'Condition-stroke.json',
  'Condition-example.json',
  'Condition-example2.json',
  'Observation-example.json',
  'Patient-example.json',
];

const call = (method: string, url: string, body?: unknown, token = admin) => fhirRequest(method, url.startsWith('http') ? url : `${server.base}${url}`, { body, headers: { Authorization: `Bearer ${token}` } });

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  admin = await mintToken(server, { scope: 'system/*.*' });
  for (const file of FIXTURES) {
    const resource = readHl7Example(file);
    delete resource.text;
    const res = await call('PUT', `/${resource.resourceType}/${resource.id}`, resource);
    expect(res.status).toBeLessThan(300);
  }
}, 60000);

afterAll(async () => {
  await server?.stop();
});

/** What documents.html asks for, computed by reading the server resource by resource with `token`: the Composition, then what it refers to, transitively (a document is closed), as far as it is stored and readable. */
async function expectedDocument(compositionKey: string, token = admin): Promise<string[]> {
  const result: string[] = [];
  let level = [compositionKey];
  while (level.length > 0) {
    const fresh = [...new Set(level)].filter((r) => !result.includes(r));
    const found: any[] = [];
    for (const key of fresh) {
      const res = await call('GET', `/${key}`, undefined, token);
      if (res.status === 200) {
        result.push(key);
        found.push(res.body);
      }
    }
    level = found.flatMap((r) => jsonReferences(r));
  }
  return result;
}

const keys = (bundle: any): string[] => bundle.entry.map((e: any) => `${e.resource.resourceType}/${e.resource.id}`);

test('the document: a Bundle of type document with an identifier and a timestamp, the Composition first, then exactly what it refers to, transitively', async () => {
  const res = await call('GET', '/Composition/example/$document');
  expect(res.status).toBe(200);
  const bundle = res.body;
  expect(bundle.resourceType).toBe('Bundle');
  expect(bundle.type).toBe('document');
  expect(bundle.identifier.system).toBeTruthy();
  expect(bundle.identifier.value).toBeTruthy();
  expect(Number.isNaN(Date.parse(bundle.timestamp))).toBe(false);
  expect(keys(bundle)[0]).toBe('Composition/example');
  const expected = await expectedDocument('Composition/example');
  expect([...keys(bundle)].sort()).toEqual([...expected].sort());
  // Sanity of the fixture: resources two steps away are in.
  expect(keys(bundle)).toEqual(expect.arrayContaining(['Practitioner/xcda1', 'Patient/example']));
  for (const entry of bundle.entry) {
    expect(entry.fullUrl).toBe(`${server.base}/${entry.resource.resourceType}/${entry.resource.id}`);
    expect(entry.search).toBeUndefined();
    expect(entry.request).toBeUndefined();
  }
  // A valid document Bundle (bdl-9, bdl-10, bdl-11 …) by the server's own validator, but
  // for the references HL7's example makes to resources it does not provide.
  const validated = await call('POST', '/Bundle/$validate', bundle);
  expect(validated.status).toBe(200);
  const errors = validated.body.issue.filter((i: any) => i.severity === 'error' || i.severity === 'fatal');
  const unresolved = errors.map((i: any) => /^Can't find '([^']+)' in the document bundle$/.exec(i.diagnostics)?.[1]);
  const dangling = new Set(bundle.entry.flatMap((e: any) => jsonReferences(e.resource)).filter((r: string) => !keys(bundle).includes(r)));
  expect(new Set(unresolved)).toEqual(dangling);
  for (const reference of dangling) expect((await call('GET', `/${reference}`)).status).toBe(404);
});

test('at type level the id parameter names the Composition (id, Composition/id or this server\'s URL), by GET and POST; errors are OperationOutcomes', async () => {
  const expected = [...(await expectedDocument('Composition/example'))].sort();
  for (const id of ['example', 'Composition/example', `${server.base}/Composition/example`]) {
    const res = await call('GET', `/Composition/$document?id=${encodeURIComponent(id)}`);
    expect(res.status).toBe(200);
    expect([...keys(res.body)].sort()).toEqual(expected);
  }
  const posted = await call('POST', '/Composition/$document', { resourceType: 'Parameters', parameter: [{ name: 'id', valueUri: 'example' }] });
  expect(posted.status).toBe(200);
  expect([...keys(posted.body)].sort()).toEqual(expected);

  for (const [url, status] of [
    ['/Composition/$document', 400],
    ['/Composition/example/$document?id=example', 400],
    ['/Composition/example/$document?graph=http://example.org/GraphDefinition/x', 400],
    ['/Composition/nope/$document', 404],
    ['/Composition/$document?id=http://elsewhere.example.org/fhir/Composition/example', 404],
  ] as const) {
    const res = await call('GET', url);
    expect([url, res.status]).toEqual([url, status]);
    expect(res.body.resourceType).toBe('OperationOutcome');
  }
});

test('persist=true stores the document as a new Bundle each time and gives its Location; a document with dangling references is refused', async () => {
  const condition = { resourceType: 'Condition', id: 'doc-clean', subject: { reference: 'Patient/xcda' }, code: { text: 'asthma' } };
  expect((await call('PUT', '/Condition/doc-clean', condition)).status).toBe(201);
  const composition = {
    resourceType: 'Composition',
    id: 'doc-clean',
    status: 'final',
    type: { text: 'discharge summary' },
    subject: { reference: 'Patient/xcda' },
    date: '2026-01-01',
    author: [{ reference: 'Practitioner/xcda-author' }],
    custodian: { reference: 'Organization/2.16.840.1.113883.19.5' },
    title: 'Discharge',
    section: [{ title: 'Problems', entry: [{ reference: 'Condition/doc-clean' }] }],
  };
  expect((await call('PUT', '/Composition/doc-clean', composition)).status).toBe(201);
  const first = await call('GET', '/Composition/doc-clean/$document?persist=true');
  expect(first.status).toBe(200);
  const location = first.headers.get('location') as string;
  expect(location).toMatch(new RegExp(`^${server.base}/Bundle/[^/]+/_history/1$`));
  const read = await call('GET', location.replace(/\/_history\/1$/, ''));
  expect(read.status).toBe(200);
  expect(read.body.type).toBe('document');
  expect(read.body.identifier).toEqual(first.body.identifier);
  expect(keys(read.body)).toEqual(keys(first.body));
  const second = await call('POST', '/Composition/doc-clean/$document', { resourceType: 'Parameters', parameter: [{ name: 'persist', valueBoolean: true }] });
  expect(second.headers.get('location')).not.toBe(location);
  expect(second.body.identifier.value).not.toBe(first.body.identifier.value);
  // HL7's example refers to resources it does not provide: stored, it would not be a valid document.
  const dangling = await call('GET', '/Composition/example/$document?persist=true');
  expect(dangling.status).toBe(400);
  expect(dangling.body.resourceType).toBe('OperationOutcome');
});

test('a version-specific reference brings that version, not the current one', async () => {
  const observation = { resourceType: 'Observation', id: 'doc-versioned', status: 'final', code: { text: 'first reading' }, subject: { reference: 'Patient/xcda' } };
  expect((await call('PUT', '/Observation/doc-versioned', observation)).status).toBe(201);
  expect((await call('PUT', '/Observation/doc-versioned', { ...observation, code: { text: 'corrected' } })).status).toBe(200);
  const composition = {
    resourceType: 'Composition',
    id: 'doc-versioned',
    status: 'final',
    type: { text: 'note' },
    subject: { reference: 'Patient/xcda' },
    date: '2026-01-01',
    author: [{ reference: 'Practitioner/xcda-author' }],
    title: 'Versioned',
    section: [{ title: 'Readings', entry: [{ reference: 'Observation/doc-versioned/_history/1' }] }],
  };
  expect((await call('PUT', '/Composition/doc-versioned', composition)).status).toBe(201);
  const res = await call('GET', '/Composition/doc-versioned/$document');
  const entry = res.body.entry.find((e: any) => e.resource.resourceType === 'Observation');
  expect(entry.resource.meta.versionId).toBe('1');
  expect(entry.resource.code.text).toBe('first reading');
  // Its Patient's managing Organization is a supporting resource: it comes too.
  expect([...keys(res.body)].sort()).toEqual(['Composition/doc-versioned', 'Observation/doc-versioned', 'Organization/2.16.840.1.113883.19.5', 'Patient/xcda', 'Practitioner/xcda-author']);
});

test('a document that cannot be made whole for the caller is a 422 naming what it cannot read, not a partial document', async () => {
  const limited = await mintToken(server, { scope: 'system/Composition.rs system/Patient.rs system/Condition.rs' });
  const res = await call('GET', '/Composition/example/$document', undefined, limited);
  expect(res.status).toBe(422);
  expect(res.body.resourceType).toBe('OperationOutcome');
  // The author, the encounter, the custodian and the event's detail: what documents.html says a document SHALL hold.
  const named = /made whole: (.*) cannot be read here$/.exec(res.body.issue[0].diagnostics)?.[1].split(', ').sort();
  expect(named).toEqual(['Encounter/xcda', 'Observation/example', 'Organization/2.16.840.1.113883.19.5', 'Practitioner/xcda-author']);
});
