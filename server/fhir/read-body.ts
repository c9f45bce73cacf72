import type { Resource } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import { isValidId } from '../core/ids';
import { isResourceType } from '../validation/structure-definitions';

/** The body of a create/update: a JSON object whose resourceType is the URL's type. */
export function resourceFromBody(body: unknown, resourceType: string): Resource {
  if (body === undefined) {
    throw badRequest('The request needs a resource in its body');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('The body must be a JSON object (a FHIR resource)');
  }
  const type = (body as { resourceType?: unknown }).resourceType;
  if (typeof type !== 'string') {
    throw badRequest('The resource has no resourceType', 'resourceType');
  }
  if (type !== resourceType) {
    throw badRequest(
      isResourceType(type)
        ? `resourceType ${type} does not match the URL's type ${resourceType}`
        : `Unknown resourceType ${type}`,
      'resourceType'
    );
  }
  return body as Resource;
}

export function assertValidIdParam(id: string): void {
  if (!isValidId(id)) {
    throw badRequest(`"${id}" is not a valid FHIR id (1-64 of A-Z a-z 0-9 - .)`);
  }
}
