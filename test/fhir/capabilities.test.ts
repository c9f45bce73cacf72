import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';
import { resourceTypes } from '../../server/validation/structure-definitions';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.stop();
});

test('metadata is an R4 CapabilityStatement listing every resource type with the interactions that are routed', async () => {
  const res = await fhirRequest('GET', `${server.base}/metadata`);
  expect(res.status).toBe(200);
  const cs = res.body;
  expect(cs.resourceType).toBe('CapabilityStatement');
  expect(cs.fhirVersion).toBe('4.0.1');
  expect(cs.kind).toBe('instance');
  expect(cs.format).toContain('application/fhir+json');
  expect(cs.format).toEqual(expect.arrayContaining(['json', 'xml', 'application/fhir+xml']));
  expect(cs.implementation.url).toBe(server.base);
  const rest = cs.rest[0];
  expect(rest.mode).toBe('server');
  expect(rest.resource.map((r: any) => r.type).sort()).toEqual([...resourceTypes].sort());
  expect(resourceTypes.length).toBeGreaterThanOrEqual(145);
  const patient = rest.resource.find((r: any) => r.type === 'Patient');
  expect(patient.interaction.map((i: any) => i.code).sort()).toEqual(
    ['create', 'delete', 'history-instance', 'history-type', 'patch', 'read', 'search-type', 'update', 'vread'].sort()
  );
  expect(patient.versioning).toBe('versioned');
  expect(patient.conditionalCreate).toBe(true);
  expect(patient.conditionalUpdate).toBe(true);
  expect(patient.conditionalDelete).toBe('single');
  expect(patient.updateCreate).toBe(true);
  expect(rest.interaction.map((i: any) => i.code).sort()).toEqual(['batch', 'history-system', 'search-system', 'transaction']);
});

test('AuditEvent is offered append-only: no update, patch, delete, update-as-create or conditional update/delete', async () => {
  const cs = (await fhirRequest('GET', `${server.base}/metadata`)).body;
  const audit = cs.rest[0].resource.find((r: any) => r.type === 'AuditEvent');
  expect(audit.interaction.map((i: any) => i.code).sort()).toEqual(['create', 'history-instance', 'history-type', 'read', 'search-type', 'vread'].sort());
  expect(audit).toMatchObject({ updateCreate: false, conditionalUpdate: false, conditionalDelete: 'not-supported' });
  expect((await fhirRequest('DELETE', `${server.base}/AuditEvent/anything`)).status).toBe(405);
});

/** A well-formed value of each search parameter type. */
const SAMPLE_VALUES: Record<string, string> = {
  date: 'ge2000',
  number: '1',
  quantity: 'gt1',
  uri: 'http://example.org/x',
  special: '42.25|-83.69|10|km',
  // The second component may be a date, a quantity, a token or a string: a year fits all.
  composite: 'x$2000',
};

test('every search parameter the CapabilityStatement lists for a type is accepted in strict mode', async () => {
  const cs = (await fhirRequest('GET', `${server.base}/metadata`)).body;
  for (const type of ['Patient', 'Observation', 'Encounter']) {
    const resource = cs.rest[0].resource.find((r: any) => r.type === type);
    for (const param of resource.searchParam ?? []) {
      // `_filter` takes an expression over the other parameters.
      const value = param.name === '_filter' ? encodeURIComponent('_id eq x') : (SAMPLE_VALUES[param.type] ?? 'x');
      const res = await fhirRequest('GET', `${server.base}/${type}?${param.name}=${value}`, {
        headers: { Prefer: 'handling=strict' },
      });
      expect({ param: param.name, status: res.status }).toEqual({ param: param.name, status: 200 });
    }
  }
});

test('the CapabilityStatement is valid FHIR by our own $validate: no empty arrays for types without includes, parameters or operations', async () => {
  const res = await fhirRequest('GET', `${server.base}/metadata`);
  const validated = await fhirRequest('POST', `${server.base}/CapabilityStatement/$validate`, { body: res.body });
  const errors = (validated.body.issue ?? []).filter((i: { severity: string }) => i.severity === 'error' || i.severity === 'fatal');
  expect(errors).toEqual([]);
  // Several R4 types have no reference parameter to include by (e.g. Binary, Parameters).
  const withoutIncludes = res.body.rest[0].resource.filter((r: { searchInclude?: unknown[] }) => r.searchInclude === undefined);
  expect(withoutIncludes.length).toBeGreaterThan(0);
});
