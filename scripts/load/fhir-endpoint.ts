/**
 * The FHIR server the load tool talks to: its base URL and bearer token, the requests
 * it sends and what a network failure means. Uses the global fetch (undici): keep-alive,
 * http and https; the per-request cost that scripts/bench/keep-alive-http.ts avoids does
 * not matter for a few hundred multi-megabyte Bundles.
 */
export interface FhirEndpoint {
  /** e.g. http://localhost:8080/fhir (no trailing slash). */
  base: string;
  token?: string;
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/** An error that means the server cannot be reached at all, as opposed to one failed request. */
export class UnreachableError extends Error {}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

export function endpoint(url: string, token?: string): FhirEndpoint {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`not a URL: ${url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`the FHIR base URL must be http or https: ${url}`);
  }
  return { base: url.replace(/\/+$/, ''), token: token || undefined };
}

function headers(target: FhirEndpoint, extra: Record<string, string>): Record<string, string> {
  return {
    accept: 'application/fhir+json',
    ...(target.token ? { authorization: `Bearer ${target.token}` } : {}),
    ...extra,
  };
}

/** GET `[base]/path` (path without the leading slash). */
export function get(target: FhirEndpoint, path: string): Promise<HttpAnswer> {
  return send(target, path, { method: 'GET', headers: headers(target, {}) });
}

/**
 * POST a Bundle's text to `[base]` (http.html#transaction), unchanged: a transaction
 * stays a transaction and a batch a batch. `return=minimal`: the response entries still
 * carry status and location, without echoing every resource back.
 */
export function postBundle(target: FhirEndpoint, text: string): Promise<HttpAnswer> {
  return send(target, '', {
    method: 'POST',
    headers: headers(target, { 'content-type': 'application/fhir+json', prefer: 'return=minimal' }),
    body: text,
  });
}

async function send(target: FhirEndpoint, path: string, init: RequestInit): Promise<HttpAnswer> {
  const url = path ? `${target.base}/${path}` : target.base;
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    const reason = networkReason(err);
    throw reason.unreachable ? new UnreachableError(reason.message) : new Error(reason.message);
  }
  try {
    return { status: res.status, body: await res.text() };
  } catch (err) {
    throw new Error(networkReason(err).message);
  }
}

/** fetch's "fetch failed" hides the reason in `cause` (an AggregateError when localhost has two addresses). */
function networkReason(err: unknown): { message: string; unreachable: boolean } {
  let cause: unknown = err;
  while (cause instanceof Error && cause.cause !== undefined) {
    cause = cause.cause;
  }
  const first = cause instanceof AggregateError && cause.errors.length > 0 ? cause.errors[0] : cause;
  const code = (first as NodeJS.ErrnoException | undefined)?.code ?? (cause as NodeJS.ErrnoException | undefined)?.code;
  const message = first instanceof Error && first.message ? first.message : String(first);
  return { message, unreachable: code !== undefined && UNREACHABLE.has(code) };
}
