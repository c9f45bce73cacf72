import type { Bundle, Patient, Reference, Resource } from '@medplum/fhirtypes';
import { searchByValues } from '../storage/search-every-page';
import { relativeReferenceId } from '../core/references';
import { parseSearchRequest, type SearchQuery } from '../search/parse-search-request';
import type { ResourceStore } from '../storage/resource-store';

const LOINC = 'http://loinc.org';
const CONSENT_CATEGORY = 'http://terminology.hl7.org/CodeSystem/consentcategorycodes';
const CONSENT_SCOPE = 'http://terminology.hl7.org/CodeSystem/consentscope';

/** ABO and Rh typing (LOINC): "blood group" of the seed documents. */
export const BLOOD_GROUP_CODES = ['882-1', '883-9', '884-7', '10331-7', '34474-7', '34475-4'].map((c) => `${LOINC}|${c}`);
/** Consent categories that are advance directives (R4 consent-category examples and LOINC). */
const ADVANCE_DIRECTIVE_CATEGORIES = [
  `${CONSENT_CATEGORY}|acd`,
  `${CONSENT_CATEGORY}|dnr`,
  `${CONSENT_CATEGORY}|polst`,
  `${LOINC}|75320-2`,
  `${LOINC}|42348-3`,
];

const MAX_PER_KIND = 200;
const RECENT_VITALS_SCANNED = 200;

/**
 * What an emergency team needs at once about a patient, as resources (Patient first):
 * the Patient itself (with its emergency contacts, Patient.contact) and its active
 * RelatedPersons; every AllergyIntolerance; the *active* Conditions (clinical status
 * active, recurrence or relapse); the *active* MedicationRequests and
 * MedicationStatements and the Medications they name; the latest blood group
 * Observation(s); the latest value of each vital sign; advance directives (active
 * Consents of an advance-directive category or scope); active Devices (implants) and
 * active Flags (alerts). Anything entered in error or refuted is left out.
 *
 * Read through `store`, so the caller decides whose confinement applies: break-the-glass
 * passes an unconfined store, the emergency card the caller's own.
 */
export async function criticalSummary(store: ResourceStore, patient: Patient & { id: string }): Promise<Resource[]> {
  const subject = `Patient/${patient.id}`;
  const find = async (type: string, query: SearchQuery): Promise<Resource[]> => {
    const request = parseSearchRequest(type, { _count: String(MAX_PER_KIND), ...query }, { strict: true, defaultCount: MAX_PER_KIND, maxCount: Math.max(MAX_PER_KIND, RECENT_VITALS_SCANNED) });
    return (await store.search(request)).resources.filter(notInError);
  };
  const [related, allergies, conditions, requests, statements, bloodGroups, vitals, directivesByCategory, directivesByScope, devices, flags] = await Promise.all([
    find('RelatedPerson', { patient: subject }),
    find('AllergyIntolerance', { patient: subject }),
    // "Active" as the functional lists define it (search/functional-lists.ts).
    find('Condition', { patient: subject, _list: '$current-problems' }),
    find('MedicationRequest', { patient: subject, _list: '$current-medications' }),
    find('MedicationStatement', { patient: subject, _list: '$current-medications' }),
    find('Observation', { patient: subject, code: BLOOD_GROUP_CODES.join(','), _sort: '-date' }),
    find('Observation', { patient: subject, category: 'vital-signs', _sort: '-date', _count: String(RECENT_VITALS_SCANNED) }),
    find('Consent', { patient: subject, status: 'active', category: ADVANCE_DIRECTIVE_CATEGORIES.join(',') }),
    find('Consent', { patient: subject, status: 'active', scope: `${CONSENT_SCOPE}|adr` }),
    find('Device', { patient: subject, status: 'active' }),
    // R4 Flag has no `status` search parameter.
    find('Flag', { patient: subject }),
  ]);
  const medications = await referencedMedications(store, [...requests, ...statements]);
  const all = [
    patient,
    ...related.filter((r) => (r as { active?: boolean }).active !== false),
    ...allergies,
    ...conditions,
    ...requests,
    ...statements,
    ...medications,
    ...latestPerCode(bloodGroups),
    ...latestPerCode(vitals),
    ...directivesByCategory,
    ...directivesByScope,
    ...devices,
    ...flags.filter((f) => (f as { status?: string }).status === 'active'),
  ];
  const seen = new Set<string>();
  return all.filter((r) => {
    const key = `${r.resourceType}/${r.id}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The summary as a `collection` Bundle, each entry with its full URL. */
export function summaryBundle(resources: readonly Resource[], baseUrl: string, now = new Date()): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'collection',
    timestamp: now.toISOString(),
    entry: resources.map((resource) => ({ fullUrl: `${baseUrl}/${resource.resourceType}/${resource.id}`, resource })),
  };
}

/** Not recorded in error, nor refuted: what a summary may show. */
export function notInError(resource: Resource): boolean {
  const r = resource as { status?: string; verificationStatus?: { coding?: { code?: string }[] } };
  if (r.status === 'entered-in-error') return false;
  const verification = r.verificationStatus?.coding?.map((c) => c.code) ?? [];
  return !verification.includes('entered-in-error') && !verification.includes('refuted');
}

/** The first of each code in `observations` (sorted newest first): the latest value of each measurement. */
export function latestPerCode(observations: readonly Resource[]): Resource[] {
  const seen = new Set<string>();
  const latest: Resource[] = [];
  for (const observation of observations) {
    const coding = (observation as { code?: { coding?: { system?: string; code?: string }[]; text?: string } }).code;
    const key = coding?.coding?.map((c) => `${c.system}|${c.code}`).sort().join(',') || coding?.text || observation.id || '';
    if (seen.has(key)) continue;
    seen.add(key);
    latest.push(observation);
  }
  return latest;
}

async function referencedMedications(store: ResourceStore, orders: readonly Resource[]): Promise<Resource[]> {
  const ids = new Set<string>();
  for (const order of orders) {
    const reference = (order as { medicationReference?: Reference }).medicationReference?.reference;
    const id = relativeReferenceId(reference, 'Medication');
    if (id) ids.add(id);
  }
  return searchByValues(store, 'Medication', '_id', ids);
}
