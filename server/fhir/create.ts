import type { WriteResult } from '../storage/write-resource';
import { stripType } from './conditional-references';
import type { FhirContext, FhirHandler, FhirResponse } from './fhir-request';
import { resourceFromBody } from './read-body';
import { reindexLink, versionHeaders } from './version-headers';

/**
 * https://hl7.org/fhir/R4/http.html#create, with conditional create (If-None-Exist):
 * no match → 201, one match → 200 with it, several → 412.
 */
export const create: FhirHandler = async (req, ctx) => {
  const resource = resourceFromBody(req.body, req.resourceType as string);
  // HL7's own transaction example writes it as `Patient?identifier=…`: the type is allowed.
  const ifNoneExist = req.ifNoneExist === undefined ? undefined : stripType(resource.resourceType, req.ifNoneExist);
  const result = await ctx.repo.create(resource, ifNoneExist, req.assignedId);
  return createdResponse(ctx, result, result.matched ? 200 : 201);
};

export function createdResponse(ctx: FhirContext, result: WriteResult, status = 201): FhirResponse {
  return {
    status,
    resource: result.version.resource,
    headers: { ...versionHeaders(ctx.baseUrl, result.version, true), ...reindexLink(ctx.baseUrl, result) },
    honoursPreferReturn: true,
  };
}
