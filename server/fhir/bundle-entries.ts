import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { badRequest, isOperationOutcomeError, OperationOutcomeError, outcome } from '../core/outcome';

export type EntryMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One entry of a transaction or batch, checked and split into what a request needs. */
export interface EntryRequest {
  /** Position in the request Bundle; responses keep this order. */
  index: number;
  fullUrl?: string;
  method: EntryMethod;
  /** Below the server's base, without the leading slash: `Patient`, `Patient/1/_history/2`. */
  path: string;
  /** Without '?'; conditional criteria or search parameters. */
  queryString: string;
  resource?: Resource;
  ifMatch?: string;
  ifNoneExist?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
}

const METHODS = new Set<string>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * The request Bundle of `POST [base]`: its type and raw entries, after the checks that
 * concern the Bundle as a whole (http.html#transaction): at most `maxEntries` entries,
 * and no fullUrl twice.
 */
export function readBundleRequest(body: unknown, maxEntries: number): { type: 'transaction' | 'batch'; entries: BundleEntry[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('POST to the base URL needs a Bundle of type transaction or batch in its body');
  }
  const bundle = body as Bundle;
  if (bundle.resourceType !== 'Bundle') {
    throw badRequest(`POST to the base URL needs a Bundle, not ${String(bundle.resourceType)}`, 'resourceType');
  }
  if (bundle.type !== 'transaction' && bundle.type !== 'batch') {
    throw badRequest(`Only Bundles of type transaction or batch can be processed here, not ${String(bundle.type)}`, 'Bundle.type');
  }
  const entries = bundle.entry ?? [];
  if (!Array.isArray(entries)) {
    throw badRequest('Bundle.entry must be an array', 'Bundle.entry');
  }
  if (entries.length > maxEntries) {
    throw badRequest(`The Bundle has ${entries.length} entries; this server accepts at most ${maxEntries} per ${bundle.type}`, 'Bundle.entry');
  }
  const seen = new Map<string, number>();
  entries.forEach((entry, index) => {
    const fullUrl = entry?.fullUrl;
    if (typeof fullUrl !== 'string') return;
    const first = seen.get(fullUrl);
    if (first !== undefined) {
      throw badRequest(`Bundle.entry[${index}] has the same fullUrl as Bundle.entry[${first}]: ${fullUrl}`, `Bundle.entry[${index}].fullUrl`);
    }
    seen.set(fullUrl, index);
  });
  return { type: bundle.type, entries };
}

/**
 * One entry's request: method and url (relative to the base, or absolute under this
 * server's base), the conditional headers, and the resource it carries.
 */
export function parseEntryRequest(entry: BundleEntry, index: number, baseUrl: string): EntryRequest {
  const at = `Bundle.entry[${index}]`;
  if (typeof entry !== 'object' || entry === null) {
    throw badRequest(`${at} is not an object`, at);
  }
  const request = entry.request;
  if (!request || typeof request !== 'object') {
    throw badRequest(`${at} has no request`, `${at}.request`);
  }
  const method = typeof request.method === 'string' ? request.method.toUpperCase() : '';
  if (!METHODS.has(method)) {
    throw badRequest(`${at}.request.method must be one of ${[...METHODS].join(', ')}`, `${at}.request.method`);
  }
  if (typeof request.url !== 'string' || request.url.trim() === '') {
    throw badRequest(`${at} has no request.url`, `${at}.request.url`);
  }
  const { path, queryString } = splitEntryUrl(request.url.trim(), baseUrl, `${at}.request.url`);
  const resource = entry.resource;
  if (resource !== undefined && (typeof resource !== 'object' || resource === null || Array.isArray(resource))) {
    throw badRequest(`${at}.resource must be a resource`, `${at}.resource`);
  }
  return {
    index,
    fullUrl: typeof entry.fullUrl === 'string' ? entry.fullUrl : undefined,
    method: method as EntryMethod,
    path,
    queryString,
    resource,
    ifMatch: request.ifMatch,
    ifNoneExist: request.ifNoneExist,
    ifNoneMatch: request.ifNoneMatch,
    ifModifiedSince: request.ifModifiedSince,
  };
}

function splitEntryUrl(url: string, baseUrl: string, expression: string): { path: string; queryString: string } {
  let relative = url;
  if (/^[a-z][a-z0-9+.-]*:/i.test(url)) {
    const base = `${baseUrl}/`;
    if (!url.startsWith(base)) {
      throw badRequest(`${expression} "${url}" is not on this server (its base is ${baseUrl})`, expression);
    }
    relative = url.slice(base.length);
  }
  relative = relative.replace(/^\/+/, '');
  const question = relative.indexOf('?');
  return question < 0
    ? { path: relative, queryString: '' }
    : { path: relative.slice(0, question), queryString: relative.slice(question + 1) };
}

/**
 * The error of entry `index`, saying which entry it was: every issue's text starts with
 * the entry, and its expressions are rebased onto `Bundle.entry[i].resource`.
 */
export function entryError(err: unknown, index: number, label: string): unknown {
  if (!isOperationOutcomeError(err)) {
    return err;
  }
  const at = `Bundle.entry[${index}]`;
  const issues = (err.outcome.issue ?? []).map((issue) => {
    const text = `${at} (${label}): ${issue.diagnostics ?? issue.details?.text ?? ''}`;
    const expression = issue.expression?.map((e) => (e.startsWith('Bundle.entry[') ? e : rebase(e, at)));
    return { ...issue, diagnostics: text, details: { ...issue.details, text }, expression: expression?.length ? expression : [at] };
  });
  return new OperationOutcomeError(err.status, outcome(issues));
}

/** `Patient.name[0]` → `Bundle.entry[3].resource.name[0]`; a bare parameter name stays beside the entry. */
function rebase(expression: string, at: string): string {
  const type = /^[A-Z][A-Za-z]*(?=$|[.[])/.exec(expression);
  return type ? `${at}.resource${expression.slice(type[0].length)}` : `${at}.request.url`;
}

export function entryLabel(entry: Pick<EntryRequest, 'method' | 'path' | 'queryString'>): string {
  return `${entry.method} ${entry.path}${entry.queryString ? `?${entry.queryString}` : ''}`;
}

/** A resource whose references the Bundle rewrites: any but a PATCH's Binary (JSON Patch); a FHIRPath Patch's Parameters values can refer to entries. */
export function carriesReferences(entry: { method: string; resource?: { resourceType: string } }): boolean {
  return entry.method !== 'PATCH' || entry.resource?.resourceType === 'Parameters';
}
