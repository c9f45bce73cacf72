import type { Parameters, Resource } from '@medplum/fhirtypes';
import { applyPatch, type Operation } from 'fast-json-patch';
import { badRequest, unprocessable } from '../core/outcome';
import { applyFhirPathPatch, isFhirPathPatch } from './fhirpath-patch';

/** What a PATCH carries (http.html#patch): a JSON Patch document, or a FHIRPath Patch Parameters resource. */
export type PatchDocument = Operation[] | Parameters;

/** The resource with the patch applied, on a copy; malformed patches are 400, a failed JSON Patch test 422. */
export function applyPatchDocument(resource: Resource, patch: PatchDocument): Resource {
  if (isFhirPathPatch(patch)) return applyFhirPathPatch(resource, patch);
  if (!Array.isArray(patch)) {
    throw badRequest('A JSON Patch document must be an array of operations');
  }
  try {
    return applyPatch(structuredClone(resource), patch, true, true, true).newDocument;
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    if (message.includes('Test operation failed')) {
      throw unprocessable(`JSON Patch test failed: ${message}`);
    }
    throw badRequest(`Invalid JSON Patch: ${message}`);
  }
}
