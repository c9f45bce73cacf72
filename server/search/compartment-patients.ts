import type { Resource } from '@medplum/fhirtypes';
import { patientCompartmentCodes } from './compartment-definitions';
import { indexedValues } from './match-filter-in-memory';

/**
 * The patients in whose compartment `resource` is (`Patient/id`), decided from its content
 * with the extraction that writes its reference columns: a Patient is in its own; an
 * Observation in its subject's and, when a patient performed it, in that one's too; a
 * Group in every member's.
 */
export function compartmentPatients(resource: Resource): Set<string> {
  const found = new Set<string>();
  if (resource.resourceType === 'Patient') {
    if (resource.id) found.add(`Patient/${resource.id}`);
    return found;
  }
  for (const code of patientCompartmentCodes(resource.resourceType)) {
    for (const v of indexedValues(resource, code) ?? []) if (typeof v === 'string' && /^Patient\/[^/]+$/.test(v)) found.add(v);
  }
  return found;
}
