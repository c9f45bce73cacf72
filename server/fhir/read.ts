import { parseElements, parseSummary, applySummary } from './summary';
import { nativeContent } from './binary-content';
import type { FhirHandler } from './fhir-request';
import { etag, versionHeaders } from './version-headers';

/** https://hl7.org/fhir/R4/http.html#read */
export const read: FhirHandler = async (req, ctx) => {
  const version = await ctx.repo.read(req.resourceType as string, req.id as string);
  const headers = versionHeaders(ctx.baseUrl, version);
  if (notModified(req.ifNoneMatch, req.ifModifiedSince, version.versionId, version.lastUpdated)) {
    return { status: 304, headers };
  }
  const stored = version.resource as NonNullable<typeof version.resource>;
  const content = req.binaryAccept !== undefined ? nativeContent(stored, req.binaryAccept) : undefined;
  if (content) return { status: 200, resource: stored, content, headers };
  const summary = parseSummary(req.query._summary);
  const resource = applySummary(stored, summary === 'count' ? undefined : summary, parseElements(req.query._elements));
  return { status: 200, resource, headers };
};

/** Conditional read: https://hl7.org/fhir/R4/http.html#cread */
export function notModified(
  ifNoneMatch: string | undefined,
  ifModifiedSince: string | undefined,
  versionId: number,
  lastUpdated: Date
): boolean {
  if (ifNoneMatch) {
    const current = etag(versionId);
    return ifNoneMatch.split(',').some((t) => {
      const tag = t.trim();
      return tag === '*' || tag === current || tag === `"${versionId}"`;
    });
  }
  if (ifModifiedSince) {
    const since = Date.parse(ifModifiedSince);
    // HTTP dates have second precision.
    return !Number.isNaN(since) && Math.floor(lastUpdated.getTime() / 1000) * 1000 <= since;
  }
  return false;
}
