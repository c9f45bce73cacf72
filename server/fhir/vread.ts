import { badRequest } from '../core/outcome';
import { nativeContent } from './binary-content';
import type { FhirHandler } from './fhir-request';
import { applySummary, parseElements, parseSummary } from './summary';
import { versionHeaders } from './version-headers';

/** https://hl7.org/fhir/R4/http.html#vread */
export const vread: FhirHandler = async (req, ctx) => {
  const version = await ctx.repo.vread(req.resourceType as string, req.id as string, parseVersionId(req.versionId as string));
  const headers = versionHeaders(ctx.baseUrl, version);
  const stored = version.resource as NonNullable<typeof version.resource>;
  const content = req.binaryAccept !== undefined ? nativeContent(stored, req.binaryAccept) : undefined;
  if (content) return { status: 200, resource: stored, content, headers };
  const summary = parseSummary(req.query._summary);
  const resource = applySummary(stored, summary === 'count' ? undefined : summary, parseElements(req.query._elements));
  return { status: 200, resource, headers };
};

/** A `_history/[vid]` segment as this server's version number; 400 for anything else. */
export function parseVersionId(text: string): number {
  if (!/^\d{1,9}$/.test(text)) throw badRequest(`Version id "${text}" is not a version of this server`);
  return Number(text);
}
