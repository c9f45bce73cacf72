import type { Resource } from '@medplum/fhirtypes';
import { paramColumn } from './column-names';
import { patientCompartmentCodes } from './compartment-definitions';
import { indexedParam } from './supported-parameters';

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
    const param = indexedParam(resource.resourceType, code);
    if (!param) continue;
    const out: Record<string, unknown> = {};
    param.handler.extract(param, param.expression.evaluate(resource), out, resource);
    const values = out[paramColumn(code)];
    if (Array.isArray(values)) for (const v of values) if (typeof v === 'string' && /^Patient\/[^/]+$/.test(v)) found.add(v);
  }
  return found;
}
