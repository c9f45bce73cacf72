import { fhirRequest, type FhirHttpResponse } from './fhir-client';

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
