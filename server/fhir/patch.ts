import type { Operation } from 'fast-json-patch';
import { badRequest, notFound, preconditionFailed, unsupportedMediaType } from '../core/outcome';
import { isFhirPathPatch } from '../storage/fhirpath-patch';
import type { PatchDocument } from '../storage/patch-document';
import type { FhirHandler } from './fhir-request';
import { parseIfMatch, versionHeaders } from './version-headers';

const JSON_PATCH = 'application/json-patch+json';
const FHIR_JSON_TYPES = new Set(['application/fhir+json', 'application/json', 'application/json+fhir']);

/**
 * https://hl7.org/fhir/R4/http.html#patch: JSON Patch (`application/json-patch+json`), or
 * FHIRPath Patch (a Parameters resource sent as FHIR JSON, fhirpatch.html).
 */
export const patch: FhirHandler = async (req, ctx) => {
  const result = await ctx.repo.patch(req.resourceType as string, req.id as string, patchDocument(req.contentType, req.body), parseIfMatch(req.ifMatch));
  return {
    status: 200,
    resource: result.version.resource,
    headers: versionHeaders(ctx.baseUrl, result.version, true),
    honoursPreferReturn: true,
  };
};

/**
 * `PATCH [type]?criteria` (http.html#patch: as a conditional update): the patch applied
 * to the one resource the criteria match, among those the caller may see; none is a
 * 404, several a 412.
 */
export const conditionalPatch: FhirHandler = async (req, ctx) => {
  const type = req.resourceType as string;
  if (!req.queryString) throw badRequest('A conditional patch needs search criteria: PATCH [type]?[criteria]');
  const ids = await ctx.repo.matchCriteria(type, req.queryString, false);
  if (ids.length > 1) throw preconditionFailed(`Conditional patch criteria "${req.queryString}" match more than one ${type}`);
  if (ids.length === 0) throw notFound(`No ${type} matches "${req.queryString}"`);
  return patch({ ...req, id: ids[0] }, ctx);
};

function patchDocument(contentType: string | undefined, body: unknown): PatchDocument {
  if (body === undefined) throw badRequest(`PATCH needs a patch in its body: a JSON Patch (${JSON_PATCH}) or a FHIRPath Patch Parameters (application/fhir+json or +xml)`);
  if (contentType === JSON_PATCH) return body as Operation[];
  if (contentType !== undefined && FHIR_JSON_TYPES.has(contentType)) {
    if (!isFhirPathPatch(body)) throw badRequest('A PATCH in FHIR JSON must be a FHIRPath Patch: a Parameters resource');
    return body;
  }
  throw unsupportedMediaType(`PATCH needs Content-Type ${JSON_PATCH} (JSON Patch), or application/fhir+json or application/fhir+xml (FHIRPath Patch)`);
}
