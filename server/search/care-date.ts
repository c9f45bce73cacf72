import type { Period } from '@medplum/fhirtypes';
import { parseDateSearchValue } from './date-search-value';
import type { DateSearchValue, SearchFilter } from './search-request';

/**
 * When a resource's care took place, for a Consent provision's `dataPeriod` ("the time
 * period of the data that is controlled by the agreement", consent.html) and for
 * `$everything`'s `start` / `end` ("care dates, not record currency dates"): per type, the
 * date search parameters whose values together say it: R4's `clinical-date` where the
 * type has it, else the dates of the act the resource records (authored, performed,
 * collected, created …). Kept as data here, not as code branches. A Condition has none:
 * it is a state that lasts from its onset until its abatement, often with no abatement
 * recorded, and no date parameter of it says it lies outside a period.
 */
const CARE_DATES: Readonly<Record<string, readonly string[]>> = {
  Account: ['period'],
  AdverseEvent: ['date'],
  AllergyIntolerance: ['date', 'onset', 'last-date'],
  Appointment: ['date'],
  Basic: ['created'],
  CarePlan: ['date'],
  CareTeam: ['date'],
  ChargeItem: ['occurrence', 'entered-date'],
  Claim: ['created'],
  ClaimResponse: ['created'],
  ClinicalImpression: ['date'],
  Communication: ['sent', 'received'],
  CommunicationRequest: ['authored', 'occurrence'],
  Composition: ['date', 'period'],
  Consent: ['date'],
  CoverageEligibilityRequest: ['created'],
  CoverageEligibilityResponse: ['created'],
  DetectedIssue: ['identified'],
  DeviceRequest: ['authored-on', 'event-date'],
  DiagnosticReport: ['date', 'issued'],
  DocumentManifest: ['created'],
  DocumentReference: ['date', 'period'],
  Encounter: ['date'],
  EpisodeOfCare: ['date'],
  ExplanationOfBenefit: ['created'],
  FamilyMemberHistory: ['date'],
  Flag: ['date'],
  Goal: ['start-date'],
  ImagingStudy: ['started'],
  Immunization: ['date'],
  ImmunizationEvaluation: ['date'],
  ImmunizationRecommendation: ['date'],
  Invoice: ['date'],
  List: ['date'],
  MeasureReport: ['date', 'period'],
  Media: ['created'],
  MedicationAdministration: ['effective-time'],
  MedicationDispense: ['whenhandedover', 'whenprepared'],
  MedicationRequest: ['authoredon'],
  MedicationStatement: ['effective'],
  NutritionOrder: ['datetime'],
  Observation: ['date'],
  Procedure: ['date'],
  Provenance: ['recorded', 'when'],
  QuestionnaireResponse: ['authored'],
  RequestGroup: ['authored'],
  ResearchSubject: ['date'],
  RiskAssessment: ['date'],
  ServiceRequest: ['authored', 'occurrence'],
  Specimen: ['collected'],
  SupplyRequest: ['date'],
  Task: ['authored-on', 'period'],
  VisionPrescription: ['datewritten'],
};

/** Who the patient is, not data recorded at a time: outside any data period. */
const TIMELESS_TYPES = ['Patient', 'Person', 'RelatedPerson', 'Group'];

export function careDateCodes(type: string): readonly string[] | undefined {
  return CARE_DATES[type];
}

/** Types whose care dates are listed (for the test that checks each is a date parameter of its type). */
export function careDatedTypes(): string[] {
  return Object.keys(CARE_DATES);
}

/** A provision's dataPeriod as its bounds; undefined when a bound cannot be read. */
export function dataPeriodBounds(period: Period): { start?: string; end?: string } | undefined {
  try {
    if (period.start) parseDateSearchValue('dataPeriod.start', period.start);
    if (period.end) parseDateSearchValue('dataPeriod.end', period.end);
  } catch {
    return undefined;
  }
  return { ...(period.start ? { start: period.start } : {}), ...(period.end ? { end: period.end } : {}) };
}

/**
 * The filter that keeps the resources of `type` within the data period, as a deny or a
 * permit reads it: never less denied, never more granted than asked. A resource counts
 * as within when one of its care dates overlaps the period; a deny also takes one with no
 * care date at all, and every resource of a type without care dates; a permit takes
 * neither. Undefined: the whole type is within (a deny of a type without care dates);
 * 'none': nothing of the type is (timeless types, and a permit's undated ones).
 */
export function withinDataPeriod(type: string, bounds: { start?: string; end?: string }, mode: 'deny' | 'permit'): SearchFilter | undefined | 'none' {
  if (TIMELESS_TYPES.includes(type)) return 'none';
  const codes = CARE_DATES[type];
  if (!codes) return mode === 'deny' ? undefined : 'none';
  // ge S: the value ends at or after the period starts; le E: it starts at or before the period ends.
  const after = bounds.start ? parseDateSearchValue('dataPeriod', `ge${bounds.start}`) : undefined;
  const before = bounds.end ? parseDateSearchValue('dataPeriod', `le${bounds.end}`) : undefined;
  return careDateFilter(codes, after, before, mode === 'deny');
}

/**
 * Resources one of whose care dates (`codes`) is `after` and `before` (date search values,
 * either or both), and, when `undatedIn`, those with none of these dates: shared by a
 * Consent's data period and `$everything`'s start / end.
 */
export function careDateFilter(codes: readonly string[], after: DateSearchValue | undefined, before: DateSearchValue | undefined, undatedIn: boolean): SearchFilter {
  const ways: SearchFilter[] = codes.map((code) => {
    const sides: SearchFilter[] = [after, before].filter((v): v is DateSearchValue => v !== undefined).map((value) => ({ kind: 'date', code, values: [value] }));
    if (sides.length === 0) return { kind: 'missing', code, missing: false };
    return sides.length === 1 ? sides[0] : { kind: 'all', filters: sides };
  });
  if (undatedIn) ways.push({ kind: 'all', filters: codes.map((code): SearchFilter => ({ kind: 'missing', code, missing: true })) });
  return ways.length === 1 ? ways[0] : { kind: 'any', filters: ways };
}
