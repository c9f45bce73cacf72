import { resourceTypes } from '../validation/structure-definitions';
import { patientCompartmentFilter } from './compartment-definitions';
import { careDateCodes, careDateFilter } from './care-date';
import type { DateSearchValue, SearchFilter } from './search-request';
import { indexedParam } from './supported-parameters';

/**
 * A patient's record as `Patient/$everything` returns it
 * (https://hl7.org/fhir/R4/patient-operation-everything.html): the Patient, every
 * resource in its compartment (the official CompartmentDefinition, decided by the
 * reference columns written with each resource), and the resources those refer to whose
 * types have no place in any patient's compartment (Practitioner, Organization,
 * Location, Medication, Device, …): supporting resources that cannot belong to another
 * patient's record. Types in the compartment are never followed as references, so a
 * reference to another patient's Encounter cannot bring it in.
 */

/**
 * In the compartment but not the record: the trail of who accessed it. It grows with
 * every access, `$everything` included, and has its own query (`AuditEvent?patient=`).
 */
const NOT_THE_RECORD: ReadonlySet<string> = new Set(['AuditEvent']);

let compartmentTypes: readonly string[] | undefined;
let referencedTypes: readonly string[] | undefined;

/** Patient first, then the other types of the Patient compartment, alphabetically: the answer's order. */
export function patientRecordTypes(): readonly string[] {
  compartmentTypes ??= [
    'Patient',
    ...resourceTypes.filter((t) => t !== 'Patient' && !NOT_THE_RECORD.has(t) && patientCompartmentFilter(t, '-') !== undefined).sort(),
  ];
  return compartmentTypes;
}

/** The types a record's references are followed to (every type outside the compartment), alphabetically. */
export function supportingTypes(): readonly string[] {
  if (!referencedTypes) {
    const inCompartment = new Set(patientRecordTypes());
    referencedTypes = resourceTypes.filter((t) => !inCompartment.has(t) && !NOT_THE_RECORD.has(t)).sort();
  }
  return referencedTypes;
}

/**
 * `start` / `end` of $everything as instants: care from `from` on (the start of the
 * `start` date), care before `to` (the end of the `end` date).
 */
export interface CareDates {
  from?: string;
  to?: string;
}

/**
 * The filters that select `resourceType`'s part of the record of `Patient/patientId`:
 * compartment membership and, when asked, care dates (care-date.ts: the official
 * `clinical-date` where the type has it, else the act's own dates, e.g. Claim `created`,
 * MedicationRequest `authoredon`): one of them must overlap the range; a resource with
 * none of them, or of a type without care dates (Coverage), stays in, since nothing says
 * it lies outside.
 */
export function patientRecordFilters(resourceType: string, patientId: string, careDates: CareDates = {}): SearchFilter[] {
  const compartment = patientCompartmentFilter(resourceType, patientId);
  if (!compartment) throw new Error(`${resourceType} is not in the Patient compartment`);
  const filters: SearchFilter[] = [compartment];
  const codes = (careDateCodes(resourceType) ?? []).filter((code) => indexedParam(resourceType, code) !== undefined);
  if (codes.length === 0 || (!careDates.from && !careDates.to)) return filters;
  // Overlap: care that ends at or after `from` (gt against a range ending at `from`) and starts before `to`, by one of its care dates; undated care stays.
  const after: DateSearchValue | undefined = careDates.from ? { prefix: 'gt', start: careDates.from, end: careDates.from } : undefined;
  const before: DateSearchValue | undefined = careDates.to ? { prefix: 'lt', start: careDates.to, end: careDates.to } : undefined;
  filters.push(careDateFilter(codes, after, before, true));
  return filters;
}
