import { fhirRequest, withoutMeta } from '../support/fhir-client';
import { INVALID_HL7_EXAMPLES, hl7ExampleFiles, readHl7Example } from '../support/hl7-examples';
import { startTestServer, type TestServer } from '../support/test-server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.stop();
});

const files = hl7ExampleFiles();

/** What the server itself changes: a Subscription written as requested is activated (docs/subscriptions.md). */
function asStored(example: any): any {
  return example.resourceType === 'Subscription' && example.status === 'requested' ? { ...example, status: 'active' } : example;
}

test('there are HL7 examples to load', () => {
  expect(files.length).toBeGreaterThan(800);
});

describe('every official HL7 R4 example is created and read back as sent (apart from meta)', () => {
  test.each(files)('%s', async (file) => {
    const example = readHl7Example(file);
    // AuditEvents are append-only: no PUT, not even one that would create; they are POSTed.
    const appendOnly = example.resourceType === 'AuditEvent';
    const { id: _exampleId, ...withoutId } = example;
    const created = appendOnly
      ? await fhirRequest('POST', `${server.base}/AuditEvent`, { body: withoutId })
      : await fhirRequest('PUT', `${server.base}/${example.resourceType}/${example.id}`, { body: example });
    const url = `${server.base}/${example.resourceType}/${appendOnly ? created.body?.id : example.id}`;
    if (file in INVALID_HL7_EXAMPLES) {
      expect(created.status).toBe(400);
      expect(created.body.resourceType).toBe('OperationOutcome');
      return;
    }
    expect({ status: created.status, outcome: created.body?.resourceType === 'OperationOutcome' && example.resourceType !== 'OperationOutcome' ? created.body : undefined }).toEqual({ status: 201, outcome: undefined });
    const read = await fhirRequest('GET', url);
    expect(read.status).toBe(200);
    expect(withoutMeta(read.body)).toEqual(withoutMeta(asStored(appendOnly ? { ...example, id: read.body.id } : example)));
    // Client meta (profile, tag, security) survives; the server owns versionId and lastUpdated.
    const { versionId: _v, lastUpdated: _l, ...clientMeta } = example.meta ?? {};
    const { versionId, lastUpdated, ...storedMeta } = read.body.meta;
    expect(storedMeta).toEqual(clientMeta);
    expect(versionId).toBe('1');
    expect(Date.parse(lastUpdated)).not.toBeNaN();
  });
});

test('a POST of an example gets a new server id and reads back equal apart from id and meta', async () => {
  const example = readHl7Example('Observation-example.json');
  const created = await fhirRequest('POST', `${server.base}/Observation`, { body: example });
  expect(created.status).toBe(201);
  expect(created.body.id).not.toBe(example.id);
  const read = await fhirRequest('GET', `${server.base}/Observation/${created.body.id}`);
  expect(withoutMeta({ ...read.body, id: example.id })).toEqual(withoutMeta(example));
});
