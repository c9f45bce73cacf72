import type { Resource } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import type { FhirHandler } from './fhir-request';
import { assertValidIdParam, resourceFromBody } from './read-body';
import { parseIfMatch, reindexLink, versionHeaders } from './version-headers';

/** https://hl7.org/fhir/R4/http.html#update — creates with the client's id when absent. */
export const update: FhirHandler = async (req, ctx) => {
  const id = req.id as string;
  assertValidIdParam(id);
  const resource = resourceFromBody(req.body, req.resourceType as string);
  if (resource.id === undefined) {
    throw badRequest('The resource in an update must carry its id', `${resource.resourceType}.id`);
  }
  if (resource.id !== id) {
    throw badRequest(`The resource's id "${resource.id}" does not match the URL's id "${id}"`, `${resource.resourceType}.id`);
  }
  const result = await ctx.repo.update(resource as Resource & { id: string }, parseIfMatch(req.ifMatch));
  return {
    status: result.created ? 201 : 200,
    resource: result.version.resource,
    headers: { ...versionHeaders(ctx.baseUrl, result.version, true), ...reindexLink(ctx.baseUrl, result) },
    honoursPreferReturn: true,
  };
};

/** https://hl7.org/fhir/R4/http.html#cond-update — PUT [type]?criteria */
export const conditionalUpdate: FhirHandler = async (req, ctx) => {
  const resource = resourceFromBody(req.body, req.resourceType as string);
  const result = await ctx.repo.conditionalUpdate(resource, req.queryString, parseIfMatch(req.ifMatch));
  return {
    status: result.created ? 201 : 200,
    resource: result.version.resource,
    headers: { ...versionHeaders(ctx.baseUrl, result.version, true), ...reindexLink(ctx.baseUrl, result) },
    honoursPreferReturn: true,
  };
};
