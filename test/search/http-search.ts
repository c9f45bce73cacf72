import type { Bundle, BundleEntry, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { fhirRequest } from '../support/fhir-client';
import type { TestServer } from '../support/test-server';

/**
 * Search over real HTTP for the search tests: fixtures are stored through the API (PUT,
 * so ids are kept) and bundles are split by `search.mode`.
 */
export const resourceKey = (r: { resourceType?: string; id?: string }): string => `${r.resourceType}/${r.id}`;

/** PUTs each resource; returns the ones the server accepted (a few HL7 examples are invalid). */
export async function storeOverHttp(server: TestServer, resources: Resource[]): Promise<Resource[]> {
  const stored: Resource[] = [];
  for (let i = 0; i < resources.length; i += 16) {
    await Promise.all(
      resources.slice(i, i + 16).map(async (r) => {
        const res = await fhirRequest('PUT', `${server.base}/${resourceKey(r)}`, { body: r });
        if (res.status === 201 || res.status === 200) stored.push(r);
      })
    );
  }
  return stored;
}

export interface SearchPage {
  status: number;
  body: any;
  entries: BundleEntry[];
  matches: Resource[];
  includes: Resource[];
  outcomes: OperationOutcome[];
  total?: number;
}

export function splitBundle(status: number, body: Bundle | OperationOutcome | undefined): SearchPage {
  const entries: BundleEntry[] = body?.resourceType === 'Bundle' ? body.entry ?? [] : [];
  const of = (mode: string): Resource[] => entries.filter((e) => e.search?.mode === mode).map((e) => e.resource as Resource);
  return {
    status,
    body,
    entries,
    matches: of('match'),
    includes: of('include'),
    outcomes: of('outcome') as OperationOutcome[],
    total: body?.resourceType === 'Bundle' ? body.total : undefined,
  };
}

/** GET [base]/[path]; `path` is `Type?query` with the query already encoded. */
export async function getSearch(server: TestServer, path: string, headers: Record<string, string> = {}): Promise<SearchPage> {
  const res = await fhirRequest('GET', `${server.base}/${path}`, { headers });
  return splitBundle(res.status, res.body);
}

/** POST [base]/[type]/_search with the parameters as an x-www-form-urlencoded body. */
export async function postSearch(
  server: TestServer,
  type: string,
  params: [string, string][],
  headers: Record<string, string> = {},
  urlQuery = ''
): Promise<SearchPage> {
  const res = await fhirRequest('POST', `${server.base}/${type}/_search${urlQuery ? `?${urlQuery}` : ''}`, {
    rawBody: new URLSearchParams(params).toString(),
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
  });
  return splitBundle(res.status, res.body);
}

/** A query string from name/value pairs, each part percent-encoded. */
export function queryString(params: [string, string][]): string {
  return params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

export const sortedKeys = (rs: Resource[]): string[] => rs.map(resourceKey).sort();
