import type { Person, RelatedPerson } from '@medplum/fhirtypes';
import { searchByValues } from '../storage/search-every-page';
import { referenceIdAnywhere, relativeReferenceId } from '../core/references';
import { parseDateRange } from '../core/date-range';
import type { SearchRequest } from '../search/search-request';
import type { ResourceStore } from '../storage/resource-store';

/**
 * The patients whose compartments a user with the `patient` role sees: their own and,
 * when PATIENT_DEPENDANTS is on, those they act for, said in FHIR's own terms:
 *  - fhirUser `Patient/P`: P, plus the `patient` of every RelatedPerson R that an active
 *    Person says is the same human as P (one Person whose `link.target`s name both
 *    `Patient/P` and `RelatedPerson/R`: https://hl7.org/fhir/R4/person.html, "linking
 *    the records of one person in several roles"). A Person, not `Patient.link`: the
 *    patient role may update its own Patient but not write Persons (policies/roles.json),
 *    so a patient cannot link themself to someone else's child;
 *  - fhirUser `RelatedPerson/R` (SMART allows it): R's `patient` (R itself is in that
 *    patient's compartment, so it comes with it).
 * R counts only while it is current (`active` not false, today within its `period`) and
 * one coding of its `relationship` is a v3-RoleCode of someone who legitimately acts for
 * the patient (ACTING_FOR_CODES). One step only: a dependant's own dependants are not
 * reached. Only relative references (`RelatedPerson/R`, `Patient/D`) count: an absolute
 * URL may name another server's resource with the same id.
 */
export async function patientsInCareOf(fhirUser: string | undefined, store: ResourceStore, withDependants: boolean, now: Date = new Date()): Promise<string[]> {
  const own = referenceIdAnywhere(fhirUser, 'Patient');
  if (own) {
    if (!withDependants) return [own];
    const linked = await relatedPersonsOf(store, own);
    const dependants = await patientsActedFor(store, linked, now);
    return [...new Set([own, ...dependants])];
  }
  const relatedPerson = referenceIdAnywhere(fhirUser, 'RelatedPerson');
  return relatedPerson && withDependants ? patientsActedFor(store, [relatedPerson], now) : [];
}

const V3_ROLE_CODE = 'http://terminology.hl7.org/CodeSystem/v3-RoleCode';

/**
 * Relationships that carry authority to act for the patient: parents (PRN and the
 * natural and adoptive kinds below it), guardians (GUARD) and powers of attorney that
 * are general or cover health care (POWATT, DPOWATT, HPOWATT). Left out on purpose:
 * step-, foster- and gestational parents (no parental authority by that relationship
 * alone: it stays with the parents, the court or the agency), the "of fetus" codes, a
 * guardian ad litem (appointed for one legal proceeding), a special power of attorney
 * (limited to named matters), an executor of estate, and everyone else (spouse, friend,
 * emergency contact ...). Parental authority over an adult child ends with R: set
 * `active` false or close its `period`.
 */
export const ACTING_FOR_CODES: ReadonlySet<string> = new Set([
  'PRN', 'MTH', 'FTH', 'NPRN', 'NMTH', 'NFTH', 'ADOPTP', 'ADOPTM', 'ADOPTF',
  'GUARD', 'POWATT', 'DPOWATT', 'HPOWATT',
]);

/** Links followed from one Patient: far more than any family needs, few enough for one query. */
const MAX_LINKS = 100;

/** The `patient` ids of those RelatedPersons that currently act for their patient. */
async function patientsActedFor(store: ResourceStore, relatedPersonIds: string[], now: Date): Promise<string[]> {
  const people = await searchByValues<RelatedPerson>(store, 'RelatedPerson', '_id', relatedPersonIds.slice(0, MAX_LINKS));
  return people.filter((r) => actsFor(r, now)).map((r) => relativeReferenceId(r.patient?.reference, 'Patient')).filter((id): id is string => id !== undefined);
}

function actsFor(person: RelatedPerson, now: Date): boolean {
  if (person.active === false || !current(person.period, now)) return false;
  return (person.relationship ?? []).some((concept) => (concept.coding ?? []).some((c) => c.system === V3_ROLE_CODE && ACTING_FOR_CODES.has(c.code ?? '')));
}

/** Period.end is inclusive (a date means to its end); an unreadable bound counts as not current (fail closed). */
function current(period: RelatedPerson['period'], now: Date): boolean {
  const start = period?.start ? parseDateRange(period.start) : undefined;
  const end = period?.end ? parseDateRange(period.end) : undefined;
  if ((period?.start && !start) || (period?.end && !end)) return false;
  return (!start || start.start <= now) && (!end || now < end.end);
}

/** The RelatedPerson ids that active Persons linking Patient/`patientId` also link. */
async function relatedPersonsOf(store: ResourceStore, patientId: string): Promise<string[]> {
  const request: SearchRequest = {
    resourceType: 'Person',
    filters: [{ kind: 'reference', code: 'patient', entries: [`Patient/${patientId}`] }],
    sort: [],
    count: MAX_LINKS,
    offset: 0,
    total: 'none',
    warnings: [],
  };
  const people = (await store.search(request)).resources as Person[];
  const ids = people
    .filter((p) => p.active !== false)
    .flatMap((p) => (p.link ?? []).map((l) => relativeReferenceId(l.target?.reference, 'RelatedPerson')))
    .filter((id): id is string => id !== undefined);
  return [...new Set(ids)].slice(0, MAX_LINKS);
}

