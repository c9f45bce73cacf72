export interface FhirHttpResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** A tiny FHIR HTTP client over fetch: JSON in, parsed JSON (when any) out. */
export async function fhirRequest<T = any>(
  method: string,
  url: string,
  options: { body?: unknown; rawBody?: string; headers?: Record<string, string> } = {}
): Promise<FhirHttpResponse<T>> {
  const headers: Record<string, string> = { Accept: 'application/fhir+json', ...options.headers };
  let body: string | undefined = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['Content-Type'] ??= 'application/fhir+json';
  }
  const res = await fetch(url, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

/** Drops server-managed meta so a read-back can be compared with what was sent. */
export function withoutMeta<T extends { meta?: unknown }>(resource: T): Omit<T, 'meta'> {
  const { meta: _meta, ...rest } = resource;
  return rest;
}

/** Every match of a search, following `next` links from `url` to the last page (each page must be a 200). */
export async function searchAllPages<T = any>(url: string): Promise<T[]> {
  const found: T[] = [];
  for (let next: string | undefined = url; next; ) {
    const res: FhirHttpResponse = await fhirRequest('GET', next);
    if (res.status !== 200) throw new Error(`GET ${next}: ${res.status}`);
    found.push(...(res.body.entry ?? []).map((e: { resource: T }) => e.resource));
    next = res.body.link?.find((l: { relation: string }) => l.relation === 'next')?.url;
  }
  return found;
}
