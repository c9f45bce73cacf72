import type { Operation } from 'fast-json-patch';
import { unsupportedMediaType } from '../core/outcome';
import type { FhirHandler } from './fhir-request';
import { parseIfMatch, versionHeaders } from './version-headers';

/** https://hl7.org/fhir/R4/http.html#patch — JSON Patch only (FHIRPath Patch is not offered). */
export const patch: FhirHandler = async (req, ctx) => {
  if (req.contentType !== 'application/json-patch+json') {
    throw unsupportedMediaType('PATCH needs Content-Type application/json-patch+json');
  }
  const result = await ctx.repo.patch(
    req.resourceType as string,
    req.id as string,
    req.body as Operation[],
    parseIfMatch(req.ifMatch)
  );
  return {
    status: 200,
    resource: result.version.resource,
    headers: versionHeaders(ctx.baseUrl, result.version, true),
    honoursPreferReturn: true,
  };
};
