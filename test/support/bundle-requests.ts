import { fhirRequest, type FhirHttpResponse } from './fhir-client';
import { startTestServer, type TestServer } from './test-server';

/** Building transaction and batch Bundles in tests, and reading their responses. */

export const MRN = 'http://example.org/mrn';

export function patient(mrn: string, extra: Record<string, unknown> = {}): Record<string, any> {
  return { resourceType: 'Patient', identifier: [{ system: MRN, value: mrn }], ...extra };
}

export function bundle(type: 'transaction' | 'batch', entry: unknown[]): Record<string, unknown> {
  return { resourceType: 'Bundle', type, entry };
}

export function postBundle(base: string, body: unknown, headers?: Record<string, string>): Promise<FhirHttpResponse> {
  return fhirRequest('POST', base, { body, headers });
}

/** How many `type` resources carry identifier `MRN|mrn`, from the server's own count. */
export async function countWithIdentifier(base: string, type: string, mrn: string): Promise<number> {
  const res = await fhirRequest('GET', `${base}/${type}?identifier=${MRN}|${mrn}&_summary=count`);
  expect(res.status).toBe(200);
  return res.body.total;
}

/** `Type/id` from an entry's `response.location` (`[base]/Type/id/_history/n`). */
export function locationReference(base: string, location: string): string {
  expect(location.startsWith(`${base}/`)).toBe(true);
  return location.slice(base.length + 1).replace(/\/_history\/\d+$/, '');
}

/** A PATCH entry's body: the JSON Patch as a Binary (http.html#transaction). */
export function jsonPatchBinary(operations: unknown[]): Record<string, unknown> {
  return { resourceType: 'Binary', contentType: 'application/json-patch+json', data: Buffer.from(JSON.stringify(operations)).toString('base64') };
}

/** What a failed transaction (or a failed batch entry) must carry: an OperationOutcome naming the entry. */
export function expectOutcomeNaming(outcome: any, index: number): void {
  expect(outcome.resourceType).toBe('OperationOutcome');
  const issue = outcome.issue[0];
  expect(issue.severity).toMatch(/error|fatal/);
  expect(issue.diagnostics).toContain(`Bundle.entry[${index}]`);
  expect(issue.expression.join(' ')).toContain(`Bundle.entry[${index}]`);
}

/**
 * A test server for one test file (started in beforeAll, stopped in afterAll) and the
 * requests the Bundle tests make of it.
 */
export function useBundleTestServer(): {
  server: { readonly base: string };
  post: (body: unknown, headers?: Record<string, string>) => Promise<FhirHttpResponse>;
  create: (resource: Record<string, unknown>) => Promise<Record<string, any>>;
  read: (reference: string) => Promise<FhirHttpResponse>;
  countWithIdentifier: (type: string, mrn: string) => Promise<number>;
  locationReference: (location: string) => string;
} {
  let running: TestServer | undefined;
  beforeAll(async () => {
    running = await startTestServer();
  });
  afterAll(async () => {
    await running?.stop();
  });
  const server = {
    get base(): string {
      if (!running) throw new Error('the test server is not started yet');
      return running.base;
    },
  };
  return {
    server,
    post: (body, headers) => postBundle(server.base, body, headers),
    create: async (resource) => {
      const res = await fhirRequest('POST', `${server.base}/${resource.resourceType}`, { body: resource });
      expect(res.status).toBe(201);
      return res.body;
    },
    read: (reference) => fhirRequest('GET', `${server.base}/${reference}`),
    countWithIdentifier: (type, mrn) => countWithIdentifier(server.base, type, mrn),
    locationReference: (location) => locationReference(server.base, location),
  };
}
