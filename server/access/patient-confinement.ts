import { patientCompartmentFilter } from '../search/compartment-definitions';
import type { SearchFilter } from '../search/search-request';
import { PATIENT_REFERENCE_OUTSIDE_COMPARTMENT, patientContextReach } from './patient-context-types';

/**
 * What confines `resourceType` to one patient's record: the filters to AND ([] for
 * shared, non-patient types such as Practitioner or Medication), or undefined when a
 * patient-bound principal may not reach the type at all (data outside the compartment
 * that can hold patient data: Bundle, Binary, ...). `patientIds` are ORed.
 */
export function patientConfinement(resourceType: string, patientIds: readonly string[]): SearchFilter[] | undefined {
  const reach = patientContextReach(resourceType);
  if (reach === 'none') return undefined;
  if (reach === 'shared') return [];
  if (reach === 'reference') {
    return [{ kind: 'reference', code: PATIENT_REFERENCE_OUTSIDE_COMPARTMENT[resourceType], entries: patientIds.map((id) => `Patient/${id}`) }];
  }
  const filters = patientIds.map((id) => patientCompartmentFilter(resourceType, id));
  if (filters.some((f) => f === undefined)) return undefined;
  return [filters.length === 1 ? (filters[0] as SearchFilter) : { kind: 'any', filters: filters as SearchFilter[] }];
}
