import type { Resource } from '@medplum/fhirtypes';
import { referenceIdAnywhere } from '../core/references';
import { patientCompartmentCodes } from '../search/compartment-definitions';
import type { SearchFilter, SearchRequest } from '../search/search-request';
import type { ResourceStore } from '../storage/resource-store';
import type { ConsentPart, ConsentRules } from './consent-rules';
import { withinDataPeriod } from '../search/care-date';
import { insurerClaimReferences, withClaimReferences } from './insurer-claims';
import { patientConfinement } from './patient-confinement';
import { patientContextReach } from './patient-context-types';
import { patientsInCareOf } from './patient-dependants';
import type { Principal } from './principal';

/**
 * Where a user's relationships put the edge of what they may see (beyond their scopes
 * and role): filters ANDed to every grant on a type ([] for none), or undefined when
 * the type is out of their reach altogether.
 */
export interface CareBoundary {
  filters(resourceType: string): SearchFilter[] | undefined;
}

/** Roles that work for a hospital (or a department of one) and see its patients. */
const HOSPITAL_ROLES = new Set(['practitioner', 'nurse', 'receptionist', 'pharmacist', 'lab-technician']);
/** Organization.partOf levels followed down from a user's organisations (hospital → department → unit ...). */
const MAX_DEPARTMENT_DEPTH = 6;
const MAX_ORGANIZATIONS = 1000;

const NOTHING: CareBoundary = { filters: () => undefined };

/**
 * A user's relationships: whom a Consent may name to mean them, and the boundary of what
 * they may see given the Consent rules of the current request.
 */
export interface Relations {
  /** Their fhirUser and the organisations they work for (Consent.provision.actor references). */
  actors: string[];
  boundary(rules: ConsentRules): CareBoundary | undefined;
}

/** Settings of the relationships (config.ts); defaults as there. */
export interface RelationsOptions {
  /** PATIENT_DEPENDANTS. */
  patientDependants?: boolean;
}

/**
 * The relationships of a user token (undefined for backend services, whose scopes decide
 * alone):
 *  - patient: their own record (the patient compartment of their fhirUser) and, unless
 *    `patientDependants` is false, those of the patients they act for as parent,
 *    guardian or power of attorney (patient-dependants.ts);
 *  - practitioner, nurse, receptionist, pharmacist, lab technician: the patients of the
 *    organisations they hold a PractitionerRole in, and of those organisations'
 *    departments (Organization.partOf), linked by Patient.managingOrganization or by an
 *    Encounter whose serviceProvider is one of them (a transfer starts one), plus the
 *    patients whose Consent permits them; data outside the patient compartment that
 *    belongs to no patient (Practitioner, Location, Medication ...) is shared;
 *  - insurer: Coverage whose payor and Claim / ClaimResponse whose insurer is their
 *    organisation, shared data, and what those Claims reference (patient, diagnoses,
 *    procedures, encounters, supporting information ...: insurer-claims.ts); nothing
 *    else clinical;
 *  - admin, auditor: no boundary of their own;
 *  - any other role, or a user whose fhirUser does not fit the role: nothing.
 * For every role but patient, a Consent that denies them a patient removes that patient.
 */
export async function relationsOf(principal: Principal, store: ResourceStore, options: RelationsOptions = {}): Promise<Relations | undefined> {
  if (!principal.userId) return undefined;
  const role = principal.role ?? '';
  const self = principal.fhirUser ? [principal.fhirUser] : [];
  if (role === 'admin' || role === 'auditor') return { actors: self, boundary: (rules) => excluding(undefined, rules) };
  if (role === 'patient') {
    const patients = await patientsInCareOf(principal.fhirUser, store, options.patientDependants ?? true);
    const own: CareBoundary = patients.length > 0 ? { filters: (type) => patientConfinement(type, patients) } : NOTHING;
    return { actors: [], boundary: () => own };
  }
  if (role === 'insurer') {
    const organizations = await organizationsOf(principal, store);
    const insured = withClaimReferences(insurerBoundary(organizations), await insurerClaimReferences(store, organizations));
    return { actors: [...self, ...organizations], boundary: (rules) => excluding(insured, rules) };
  }
  if (HOSPITAL_ROLES.has(role)) {
    const organizations = await organizationsOf(principal, store);
    const known = await knownPatients(store, organizations);
    return { actors: [...self, ...organizations], boundary: (rules) => excluding(hospitalBoundary(organizations, rules.permitted, known, rules.permittedParts), rules) };
  }
  return { actors: [], boundary: () => NOTHING };
}

/**
 * `boundary` without the data of the denied patients, and without the parts of patients'
 * data that narrowed denies name (their types, their security labels). A type that cannot
 * be confined to patients is refused.
 */
function excluding(boundary: CareBoundary | undefined, rules: ConsentRules): CareBoundary | undefined {
  const denied = rules.denied;
  const parts = rules.deniedParts ?? [];
  if (denied.length === 0 && parts.length === 0) return boundary;
  return {
    filters(type) {
      let filters = boundary ? boundary.filters(type) : [];
      if (filters === undefined) return undefined;
      if (denied.length > 0) {
        if (type === 'Patient') filters = [...filters, { kind: 'id', not: true, ids: [...denied] }];
        else {
          const theirs = patientConfinement(type, denied);
          if (theirs === undefined) return undefined;
          if (theirs.length > 0) filters = [...filters, { kind: 'not', filter: allOf(theirs) }];
        }
      }
      for (const part of parts) {
        if (part.types && !part.types.includes(type)) continue;
        const theirs = partOf(part, type, 'deny');
        if (theirs === undefined) return undefined;
        if (theirs.length === 0) continue;
        filters = [...filters, { kind: 'not', filter: allOf(theirs) }];
      }
      return filters;
    },
  };
}

/**
 * The filters that select a Consent part's resources of `type`: the patient's, with one of
 * its labels, among the resources it names, holding one of its codes, within its data
 * period as a deny or a permit reads it (care-date.ts); undefined when `type` cannot be
 * confined to patients, empty when the part holds nothing of `type`.
 */
function partOf(part: ConsentPart, type: string, mode: 'deny' | 'permit'): SearchFilter[] | undefined {
  const named = part.resources?.filter((r) => r.startsWith(`${type}/`)).map((r) => r.slice(type.length + 1));
  if (named && named.length === 0) return [];
  const inPeriod = part.period ? withinDataPeriod(type, part.period, mode) : undefined;
  if (inPeriod === 'none') return [];
  const theirs: SearchFilter[] | undefined = type === 'Patient' ? [{ kind: 'id', not: false, ids: [part.patient] }] : patientConfinement(type, [part.patient]);
  if (theirs === undefined || theirs.length === 0) return theirs;
  const filters = [...theirs];
  if (named) filters.push({ kind: 'id', not: false, ids: named });
  if (part.labels) {
    const values = part.labels.map((l) => ({ system: l.slice(0, l.indexOf('|')), code: l.slice(l.indexOf('|') + 1) }));
    filters.push({ kind: 'token', code: '_security', not: false, values });
  }
  if (part.codes) {
    filters.push({ kind: 'coding-anywhere', codings: part.codes.map((c) => ({ system: c.slice(0, c.indexOf('|')), code: c.slice(c.indexOf('|') + 1) })) });
  }
  if (inPeriod) filters.push(inPeriod);
  return filters;
}

function allOf(filters: SearchFilter[]): SearchFilter {
  return filters.length === 1 ? filters[0] : { kind: 'all', filters };
}

/** The patients an organisation set reaches: managed by one of them, or with an Encounter at one. */
function hospitalPatients(organizations: readonly string[]): SearchFilter[] {
  if (organizations.length === 0) return [];
  return [
    { kind: 'reference', code: 'organization', entries: [...organizations] },
    { kind: 'has', sourceType: 'Encounter', code: 'patient', filter: { kind: 'reference', code: 'service-provider', entries: [...organizations] } },
  ];
}

/**
 * The ids of those patients when there are at most MAX_KNOWN_PATIENTS: known when the
 * relationships were looked up, they let a read be decided from the resource's own
 * references (no query). Patients linked since then are still reached through the
 * organisation filters, so a patient registered a moment ago is never out of reach.
 */
async function knownPatients(store: ResourceStore, organizations: readonly string[]): Promise<string[]> {
  const links = hospitalPatients(organizations);
  if (links.length === 0) return [];
  const request: SearchRequest = { resourceType: 'Patient', filters: [{ kind: 'any', filters: links }], sort: [], count: MAX_KNOWN_PATIENTS + 1, offset: 0, total: 'none', warnings: [] };
  const ids = await store.matchingIds(request);
  return ids.length > MAX_KNOWN_PATIENTS ? [] : ids;
}

const MAX_KNOWN_PATIENTS = 1000;

function hospitalBoundary(organizations: string[], permitted: readonly string[], known: readonly string[] = [], permittedParts: readonly ConsentPart[] = []): CareBoundary {
  const links: SearchFilter[] = hospitalPatients(organizations);
  if (permitted.length > 0) links.push({ kind: 'id', not: false, ids: [...permitted] });
  if (links.length === 0 && permittedParts.length === 0) {
    return { filters: (type) => (patientContextReach(type) === 'shared' ? [] : undefined) };
  }
  const patients: SearchFilter = links.length === 1 ? links[0] : { kind: 'any', filters: links };
  return {
    filters(type) {
      const reach = patientContextReach(type);
      if (reach === 'shared') return [];
      if (reach === 'none') return undefined;
      const ways: SearchFilter[] = [];
      if (links.length > 0) {
        // The known patients first: a read of their data is decided in memory (match-filter-in-memory.ts).
        const fast = known.length > 0 ? patientConfinement(type, known) : undefined;
        if (type === 'Patient') ways.push(fast?.length === 1 ? { kind: 'any', filters: [fast[0], patients] } : patients);
        else {
          const codes = reach === 'reference' ? ['patient'] : patientCompartmentCodes(type);
          const chains: SearchFilter[] = codes.map((code) => ({ kind: 'chain', code, targetType: 'Patient', filter: patients }));
          const reached: SearchFilter | undefined = chains.length === 0 ? undefined : chains.length === 1 ? chains[0] : { kind: 'any', filters: chains };
          if (reached) ways.push(fast?.length === 1 ? { kind: 'any', filters: [fast[0], reached] } : reached);
        }
      }
      // Permits narrowed by class or label: only those resources of those patients.
      for (const part of permittedParts) {
        if (part.types && !part.types.includes(type)) continue;
        const theirs = partOf(part, type, 'permit');
        if (theirs && theirs.length > 0) ways.push(allOf(theirs));
      }
      if (ways.length === 0) return undefined;
      return [ways.length === 1 ? ways[0] : { kind: 'any', filters: ways }];
    },
  };
}

const INSURER_REFERENCES: Readonly<Record<string, string>> = { Coverage: 'payor', Claim: 'insurer', ClaimResponse: 'insurer' };

function insurerBoundary(organizations: string[]): CareBoundary {
  return {
    filters(type) {
      const code = INSURER_REFERENCES[type];
      if (code) return organizations.length > 0 ? [{ kind: 'reference', code, entries: organizations }] : undefined;
      return patientContextReach(type) === 'shared' ? [] : undefined;
    },
  };
}

/** `Organization/…` references of the user's PractitionerRoles and, recursively, their departments. */
async function organizationsOf(principal: Principal, store: ResourceStore): Promise<string[]> {
  const practitioner = referenceIdAnywhere(principal.fhirUser, 'Practitioner');
  if (!practitioner) return [];
  const roles = await search(store, 'PractitionerRole', { kind: 'reference', code: 'practitioner', entries: [`Practitioner/${practitioner}`] });
  const found = new Set<string>();
  for (const role of roles) {
    const ref = (role as { organization?: { reference?: string }; active?: boolean }).organization?.reference;
    if ((role as { active?: boolean }).active !== false && ref?.startsWith('Organization/')) found.add(ref);
  }
  let frontier = [...found];
  for (let depth = 0; depth < MAX_DEPARTMENT_DEPTH && frontier.length > 0 && found.size < MAX_ORGANIZATIONS; depth++) {
    const departments = await search(store, 'Organization', { kind: 'reference', code: 'partof', entries: frontier });
    frontier = departments.map((o) => `Organization/${o.id}`).filter((ref) => !found.has(ref));
    for (const ref of frontier) found.add(ref);
  }
  return [...found];
}

async function search(store: ResourceStore, resourceType: string, filter: SearchFilter): Promise<Resource[]> {
  const request: SearchRequest = { resourceType, filters: [filter], sort: [], count: MAX_ORGANIZATIONS, offset: 0, total: 'none', warnings: [] };
  return (await store.search(request)).resources;
}

