import { badRequest } from '../core/outcome';
import type { ResourceVersion } from '../storage/resource-row';

export function etag(versionId: number): string {
  return `W/"${versionId}"`;
}

/** ETag, Last-Modified and (for writes) Location of one resource version. */
export function versionHeaders(baseUrl: string, version: ResourceVersion, withLocation = false): Record<string, string> {
  const headers: Record<string, string> = {
    ETag: etag(version.versionId),
    'Last-Modified': version.lastUpdated.toUTCString(),
  };
  if (withLocation) {
    headers.Location = `${baseUrl}/${version.resourceType}/${version.id}/_history/${version.versionId}`;
  }
  return headers;
}

/**
 * A SearchParameter write that started a reindex links the Task showing its progress
 * (RFC 8288 relation `monitor`: a resource to watch for the state of this one).
 */
export function reindexLink(baseUrl: string, result: { reindexTask?: string }): Record<string, string> {
  return result.reindexTask ? { Link: `<${baseUrl}/${result.reindexTask}>; rel="monitor"` } : {};
}

/** If-Match carries an ETag: `W/"3"`, `"3"` or (leniently) a bare `3`. */
export function parseIfMatch(value: string | undefined): number | undefined {
  if (value === undefined || value === '') {
    return undefined;
  }
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(value.trim());
  if (!m) {
    throw badRequest(`If-Match must be an ETag such as W/"1", got ${value}`);
  }
  return Number(m[1]);
}
