import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.stop();
});

test('type-level $validate answers 200 with an OperationOutcome that carries the errors and their paths', async () => {
  const res = await fhirRequest('POST', `${server.base}/Patient/$validate`, {
    body: { resourceType: 'Patient', gender: 'robot' },
  });
  expect(res.status).toBe(200);
  expect(res.body.resourceType).toBe('OperationOutcome');
  const errors = res.body.issue.filter((i: any) => i.severity === 'error');
  expect(errors.length).toBeGreaterThan(0);
  expect(errors.flatMap((i: any) => i.expression ?? []).some((e: string) => e.includes('gender'))).toBe(true);
});

test('$validate of a valid resource reports no errors and stores nothing', async () => {
  const res = await fhirRequest('POST', `${server.base}/Patient/$validate`, {
    body: { resourceType: 'Patient', gender: 'female' },
  });
  expect(res.status).toBe(200);
  expect(res.body.issue.filter((i: any) => i.severity === 'error' || i.severity === 'fatal')).toHaveLength(0);
  const history = await fhirRequest('GET', `${server.base}/Patient/_history`);
  expect(history.body.entry ?? []).toHaveLength(0);
});

test('$validate accepts a Parameters body with the resource', async () => {
  const res = await fhirRequest('POST', `${server.base}/Observation/$validate`, {
    body: {
      resourceType: 'Parameters',
      parameter: [{ name: 'resource', resource: { resourceType: 'Observation', status: 'final' } }],
    },
  });
  expect(res.status).toBe(200);
  // Observation.code is mandatory (1..1)
  expect(res.body.issue.some((i: any) => i.severity === 'error' && JSON.stringify(i.expression).includes('code'))).toBe(true);
});

test('instance-level $validate checks the stored resource or the given one against the id', async () => {
  const created = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', active: true } });
  const stored = await fhirRequest('GET', `${server.base}/Patient/${created.body.id}/$validate`);
  expect(stored.status).toBe(200);
  expect(stored.body.issue.filter((i: any) => i.severity === 'error')).toHaveLength(0);
  const mismatch = await fhirRequest('POST', `${server.base}/Patient/${created.body.id}/$validate`, {
    body: { resourceType: 'Patient', id: 'other' },
  });
  expect(mismatch.status).toBe(400);
  expect((await fhirRequest('GET', `${server.base}/Patient/nobody/$validate`)).status).toBe(404);
});

test('a profile the server does not know is an error when asked for by the profile parameter, and a warning when only claimed in meta.profile', async () => {
  const usCore = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient';
  const patient = { resourceType: 'Patient', name: [{ family: 'Profiled' }] };
  const bySeverity = (body: { issue: { severity: string; diagnostics?: string }[] }, severity: string): string[] =>
    body.issue.filter((i) => i.severity === severity).map((i) => i.diagnostics ?? '');

  const asked = await fhirRequest('POST', `${server.base}/Patient/$validate?profile=${encodeURIComponent(usCore)}`, { body: patient });
  expect(bySeverity(asked.body, 'error')).toEqual([expect.stringContaining(usCore)]);
  const askedInParameters = await fhirRequest('POST', `${server.base}/Patient/$validate`, {
    body: { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: patient }, { name: 'profile', valueUri: usCore }] },
  });
  expect(bySeverity(askedInParameters.body, 'error')).toEqual([expect.stringContaining(usCore)]);

  const claimed = await fhirRequest('POST', `${server.base}/Patient/$validate`, { body: { ...patient, meta: { profile: [usCore] } } });
  expect(bySeverity(claimed.body, 'error')).toEqual([]);
  expect(bySeverity(claimed.body, 'warning')).toEqual([expect.stringContaining(usCore)]);

  // The base definition is known: nothing to report.
  const base = await fhirRequest('POST', `${server.base}/Patient/$validate?profile=http://hl7.org/fhir/StructureDefinition/Patient`, {
    body: { ...patient, meta: { profile: ['http://hl7.org/fhir/StructureDefinition/Patient'] } },
  });
  expect(base.body.issue.map((i: { severity: string }) => i.severity)).toEqual(['information']);
});

test('mode=delete checks that the resource named by the URL exists; without an id it is a 400 saying where to ask', async () => {
  const created = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', active: true } });
  const deleteMode = { resourceType: 'Parameters', parameter: [{ name: 'mode', valueCode: 'delete' }] };
  const ok = await fhirRequest('POST', `${server.base}/Patient/${created.body.id}/$validate`, { body: deleteMode });
  expect(ok.status).toBe(200);
  expect(ok.body.issue.filter((i: any) => i.severity === 'error')).toHaveLength(0);
  expect((await fhirRequest('POST', `${server.base}/Patient/nobody/$validate`, { body: deleteMode })).status).toBe(404);
  const typeLevel = await fhirRequest('POST', `${server.base}/Patient/$validate?mode=delete`, { body: deleteMode });
  expect(typeLevel.status).toBe(400);
  expect(typeLevel.body.issue[0].diagnostics).toContain('Patient/[id]/$validate');
});
