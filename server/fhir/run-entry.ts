import { STATUS_CODES } from 'node:http';
import type { Binary, BundleEntry, BundleEntryResponse } from '@medplum/fhirtypes';
import { badRequest, methodNotAllowed, type OperationOutcomeError } from '../core/outcome';
import type { EntryRequest } from './bundle-entries';
import type { FhirContext, FhirRequest, FhirResponse, PreferReturn } from './fhir-request';
import { preferredAnswer } from './prefer-return';
import { paramsRecord } from '../core/params-record';
import { noRoute, pathFields } from './route-matcher';

const JSON_PATCH = 'application/json-patch+json';

/**
 * Runs one Bundle entry through the same route table and handlers as a request over
 * HTTP, with `ctx` (whose repository may be a transaction's). `assignedId`: the id a
 * transaction gave a POST entry beforehand.
 */
export async function runEntry(
  entry: EntryRequest,
  ctx: FhirContext,
  prefer: Pick<FhirRequest, 'preferReturn' | 'preferHandling'>,
  assignedId?: string
): Promise<FhirResponse> {
  const found = ctx.findRoute(entry.method, `/${entry.path}`);
  if (!found.route) {
    if (found.allowed.length > 0) {
      throw methodNotAllowed(`${entry.method} is not allowed on ${entry.path}; allowed: ${found.allowed.join(', ')}`);
    }
    throw noRoute(found, entry.method, entry.path);
  }
  if (found.route.path === '/' && entry.method === 'POST') {
    throw badRequest('A Bundle entry cannot itself be a transaction or batch');
  }
  const { body, contentType } = entryBody(entry);
  const fields = pathFields(found.route, found.params);
  const req: FhirRequest = {
    method: entry.method,
    ...fields,
    query: paramsRecord(new URLSearchParams(entry.queryString)),
    queryString: entry.queryString,
    body,
    contentType,
    ifMatch: entry.ifMatch,
    ifNoneExist: entry.ifNoneExist,
    ifNoneMatch: entry.ifNoneMatch,
    ifModifiedSince: entry.ifModifiedSince,
    assignedId,
    ...prefer,
  };
  return found.route.handler(req, ctx);
}

/**
 * A PATCH entry carries its JSON Patch as a Binary (http.html#transaction: "the body
 * of a patch is a Binary"), or a FHIRPath Patch as the Parameters resource itself.
 */
function entryBody(entry: EntryRequest): { body?: unknown; contentType?: string } {
  if (entry.method !== 'PATCH' || entry.resource?.resourceType === 'Parameters') {
    return { body: entry.resource, contentType: entry.resource ? 'application/fhir+json' : undefined };
  }
  const binary = entry.resource as Binary | undefined;
  if (binary?.resourceType !== 'Binary' || binary.contentType !== JSON_PATCH || typeof binary.data !== 'string') {
    throw badRequest(`A PATCH entry needs a Parameters resource (FHIRPath Patch) or a Binary with contentType ${JSON_PATCH} and the patch as base64 data`, 'resource');
  }
  try {
    return { body: JSON.parse(Buffer.from(binary.data, 'base64').toString('utf8')), contentType: JSON_PATCH };
  } catch {
    throw badRequest('The PATCH entry\'s Binary.data is not base64-encoded JSON', 'resource.data');
  }
}

/**
 * `entry.response` (and the resource) for what a handler answered, honouring
 * `Prefer: return=` for writes as an HTTP response would.
 */
export function responseEntry(entry: EntryRequest, res: FhirResponse, preferReturn: PreferReturn | undefined, baseUrl: string): BundleEntry {
  const headers = res.headers ?? {};
  const response: BundleEntryResponse = { status: statusText(res.status) };
  if (headers.Location) response.location = headers.Location;
  if (headers.ETag) response.etag = headers.ETag;
  const lastModified = res.resource?.meta?.lastUpdated ?? (headers['Last-Modified'] ? new Date(headers['Last-Modified']).toISOString() : undefined);
  if (lastModified && res.resource?.resourceType !== 'Bundle') response.lastModified = lastModified;

  const result: BundleEntry = {};
  const { resource, outcome } = entry.method === 'HEAD' ? {} : preferredAnswer(res, entry.method, preferReturn);
  if (resource) {
    if (resource.id && res.honoursPreferReturn) result.fullUrl = `${baseUrl}/${resource.resourceType}/${resource.id}`;
    result.resource = resource;
  }
  if (outcome) response.outcome = outcome;
  result.response = response;
  return result;
}

/** A batch entry that failed: its status and OperationOutcome. */
export function failedEntry(err: OperationOutcomeError): BundleEntry {
  return { response: { status: statusText(err.status), outcome: err.outcome } };
}

function statusText(status: number): string {
  const reason = STATUS_CODES[status];
  return reason ? `${status} ${reason}` : String(status);
}
