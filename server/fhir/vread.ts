import { badRequest } from '../core/outcome';
import { nativeContent } from './binary-content';
import type { FhirHandler } from './fhir-request';
import { applySummary, parseElements, parseSummary } from './summary';
import { versionHeaders } from './version-headers';

/** https://hl7.org/fhir/R4/http.html#vread */
export const vread: FhirHandler = async (req, ctx) => {
  const vid = req.versionId as string;
  if (!/^\d{1,9}$/.test(vid)) {
    throw badRequest(`Version id "${vid}" is not a version of this server`);
  }
  const version = await ctx.repo.vread(req.resourceType as string, req.id as string, Number(vid));
  const headers = versionHeaders(ctx.baseUrl, version);
  const stored = version.resource as NonNullable<typeof version.resource>;
  const content = req.binaryAccept !== undefined ? nativeContent(stored, req.binaryAccept) : undefined;
  if (content) return { status: 200, resource: stored, content, headers };
  const summary = parseSummary(req.query._summary);
  const resource = applySummary(stored, summary === 'count' ? undefined : summary, parseElements(req.query._elements));
  return { status: 200, resource, headers };
};
