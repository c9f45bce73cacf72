import type { Resource } from '@medplum/fhirtypes';
import { addPairValues } from './pair-columns';
import { indexedParams } from './supported-parameters';

/**
 * The search index column values of a resource (column name → value for `pg`; null when
 * the resource has no value), computed from each parameter's compiled FHIRPath. Storage
 * writes them in the same statement as the content, so they can never go stale.
 */
export function extractIndexValues(resource: Resource): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const param of indexedParams(resource.resourceType).values()) {
    param.handler.extract(param, param.expression.evaluate(resource), out, resource);
  }
  addPairValues(resource.resourceType, out);
  return out;
}
