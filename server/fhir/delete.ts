import { informational } from '../core/outcome';
import type { WriteResult } from '../storage/write-resource';
import type { FhirHandler, FhirRequest, FhirResponse } from './fhir-request';
import { etag, parseIfMatch } from './version-headers';

/**
 * https://hl7.org/fhir/R4/http.html#delete — deleting what is absent or already deleted
 * succeeds too (the spec allows 200/204 there), without writing a new version.
 */
export const deleteResource: FhirHandler = async (req, ctx) => {
  const result = await ctx.repo.delete(req.resourceType as string, req.id as string, parseIfMatch(req.ifMatch));
  return deleted(req, result, `${req.resourceType}/${req.id}`);
};

/** DELETE [type]?criteria: one match is deleted, several is 412. */
export const conditionalDelete: FhirHandler = async (req, ctx) => {
  const result = await ctx.repo.conditionalDelete(req.resourceType as string, req.queryString);
  return deleted(req, result, `${req.resourceType}?${req.queryString}`);
};

function deleted(req: FhirRequest, result: WriteResult | undefined, target: string): FhirResponse {
  const headers: Record<string, string> = {};
  if (result && !result.noop) {
    headers.ETag = etag(result.version.versionId);
  }
  if (req.preferReturn === 'OperationOutcome') {
    const text = result && !result.noop ? `Deleted ${target}` : `Nothing to delete at ${target}`;
    return { status: 200, resource: informational(text), headers };
  }
  return { status: 204, headers };
}
