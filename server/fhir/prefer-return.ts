import type { OperationOutcome, Resource } from '@medplum/fhirtypes';
import { informational } from '../core/outcome';
import type { FhirResponse, PreferReturn } from './fhir-request';

/**
 * What a response carries under `Prefer: return=` (http.html#ops): writes that honour it
 * answer with the resource, an OperationOutcome, or nothing; everything else with its
 * resource, if any. Shared by HTTP responses and Bundle response entries.
 */
export function preferredAnswer(
  res: FhirResponse,
  method: string,
  preferReturn: PreferReturn | undefined
): { resource?: Resource; outcome?: OperationOutcome } {
  if (res.honoursPreferReturn && preferReturn === 'minimal') return {};
  if (res.honoursPreferReturn && preferReturn === 'OperationOutcome') {
    return { outcome: informational(`${method} succeeded with status ${res.status}`) };
  }
  return { resource: res.resource };
}
