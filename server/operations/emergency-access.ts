import type { Communication, Consent, Patient, PractitionerRole } from '@medplum/fhirtypes';
import { relativeReferenceId } from '../core/references';
import type { Principal } from '../access/principal';
import { roleMayCall, shippedOperationPolicy } from '../access/role-policy';
import { ScopeAccess } from '../access/scope-access';
import { ACT_REASON } from '../audit/audit-event';
import { badRequest, conflict, forbidden, notFound } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { parseSearchRequest } from '../search/parse-search-request';
import type { ResourceStore } from '../storage/resource-store';
import { criticalSummary, summaryBundle } from './critical-summary';
import { OperationInput } from './operation-parameters';

const OPERATION = 'emergency-access';
/** The longest full-record access one break-the-glass may grant. */
export const MAX_ACCESS_MINUTES = 12 * 60;
const COMMUNICATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/communication-category';
const CONSENT_SCOPE = 'http://terminology.hl7.org/CodeSystem/consentscope';
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const PARTICIPATION = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
/** How a PractitionerRole says "privacy officer": this code in any system, or these words in its code's text or display. */
export const PRIVACY_OFFICER_CODE = 'privacy-officer';
const PRIVACY_OFFICER_WORDS = /privacy[ -]officer/i;

/**
 * Break-the-glass (docs/emergency-access.md): `POST Patient/[id]/$emergency-access`, or
 * `POST Patient/$emergency-access` with an `identifier` (the health ID), with a required
 * `reason`. For the roles the policy allows (policies/roles.json `operations`), and for
 * backend services whose scopes read Patients, it returns the critical summary even
 * outside the caller's hospital and despite a Consent deny — that is the point. In the
 * same transaction as its AuditEvent (purpose of use BTG, with the reason) it tells the
 * patient and the privacy officer of the patient's managing organisation (Communication),
 * and with `accessMinutes` grants the caller the full record for that long: an active
 * Consent permitting them for purpose BTG over that period, which ends by itself.
 */
export const emergencyAccess: FhirHandler = async (req, ctx) => {
  const input = OperationInput.of(OPERATION, req.body);
  mayBreakTheGlass(ctx.principal);
  const reason = input.requiredString('reason');
  const accessMinutes = input.positiveInteger('accessMinutes');
  if (accessMinutes !== undefined) {
    if (accessMinutes > MAX_ACCESS_MINUTES) throw badRequest(`$${OPERATION}: accessMinutes may be at most ${MAX_ACCESS_MINUTES}`, 'accessMinutes');
    if (!practitionerOf(ctx.principal)) throw badRequest(`$${OPERATION}: accessMinutes grants a practitioner user the record; this token has none`, 'accessMinutes');
  }
  const store = ctx.repo.unconfined();
  const patient = req.id ? await readPatient(store, req.id) : await patientByIdentifier(store, input.identifierToken('identifier'));
  const summary = await criticalSummary(store, patient);
  const now = new Date();
  const written = await store.inTransaction(async (tx) => {
    const notices = notifications(patient, reason, ctx.principal, await privacyOfficers(tx, patient), now);
    const created: string[] = [];
    for (const notice of notices) created.push(`Communication/${(await tx.create(notice)).version.id}`);
    if (accessMinutes !== undefined) {
      created.push(`Consent/${(await tx.create(emergencyGrant(patient, practitionerOf(ctx.principal) as string, reason, now, accessMinutes))).version.id}`);
    }
    return created;
  });
  return { status: 200, resource: summaryBundle(summary, ctx.baseUrl, now), audit: { reason, entities: written } };
};

/** 403 unless the caller may break the glass: no token at all (AUTH_REQUIRED=false), a user whose role the policy allows, or a backend service that reads Patients. */
function mayBreakTheGlass(principal: Principal | undefined): void {
  if (!principal) return;
  if (principal.userId && !roleMayCall(shippedOperationPolicy(), principal.role ?? '', OPERATION)) {
    throw forbidden(`The role "${principal.role ?? 'none'}" may not use emergency access`);
  }
  if (!new ScopeAccess(principal).allows('Patient', 'r')) throw forbidden('Emergency access needs a token whose scopes read Patient');
}

function practitionerOf(principal: Principal | undefined): string | undefined {
  return relativeReferenceId(principal?.fhirUser, 'Practitioner') ? principal?.fhirUser : undefined;
}

async function readPatient(store: ResourceStore, id: string): Promise<Patient & { id: string }> {
  return (await store.read('Patient', id)).resource as Patient & { id: string };
}

async function patientByIdentifier(store: ResourceStore, token: string | undefined): Promise<Patient & { id: string }> {
  if (!token) throw badRequest(`$${OPERATION} at type level needs an identifier parameter (the patient's health ID)`, 'identifier');
  const request = parseSearchRequest('Patient', { identifier: token, _count: '2' }, { strict: true, defaultCount: 2, maxCount: 2 });
  const found = (await store.search(request)).resources;
  if (found.length === 0) throw notFound(`No Patient has the identifier ${token}`);
  if (found.length > 1) throw conflict(`Several Patients have the identifier ${token}`);
  return found[0] as Patient & { id: string };
}

/** The privacy officers of the patient's managing organisation (PractitionerRoles), or the organisation itself when it names none. */
async function privacyOfficers(store: ResourceStore, patient: Patient): Promise<Recipient[]> {
  const organization = patient.managingOrganization?.reference;
  if (!organization || !relativeReferenceId(organization, 'Organization')) return [];
  const request = parseSearchRequest('PractitionerRole', { organization, _count: '1000' }, { strict: true, defaultCount: 1000, maxCount: 1000 });
  const officers = ((await store.search(request)).resources as PractitionerRole[]).filter(
    (role) =>
      role.active !== false &&
      (role.code ?? []).some((c) => PRIVACY_OFFICER_WORDS.test(c.text ?? '') || (c.coding ?? []).some((k) => k.code === PRIVACY_OFFICER_CODE || PRIVACY_OFFICER_WORDS.test(k.display ?? '')))
  );
  return officers.length > 0 ? officers.map((o) => ({ reference: `PractitionerRole/${o.id}` })) : [{ reference: organization }];
}

type Recipient = NonNullable<Communication['recipient']>[number];

function notifications(patient: Patient & { id: string }, reason: string, principal: Principal | undefined, officers: Recipient[], now: Date): Communication[] {
  const who = principal?.fhirUser ?? (principal ? `client ${principal.clientId}` : 'an unauthenticated caller');
  const text = `Emergency access ("break the glass") to the record of Patient/${patient.id} by ${who} at ${now.toISOString()}. Reason: ${reason}`;
  const notice = (recipient: Recipient[]): Communication => ({
    resourceType: 'Communication',
    status: 'completed',
    category: [{ coding: [{ system: COMMUNICATION_CATEGORY, code: 'alert', display: 'Alert' }], text: 'Emergency access' }],
    priority: 'urgent',
    subject: { reference: `Patient/${patient.id}` },
    recipient,
    sent: now.toISOString(),
    ...(principal?.fhirUser ? { sender: { reference: principal.fhirUser } } : {}),
    reasonCode: [{ coding: [{ system: ACT_REASON, code: 'BTG', display: 'break the glass' }], text: reason }],
    payload: [{ contentString: text }],
  });
  const messages = [notice([{ reference: `Patient/${patient.id}` }])];
  if (officers.length > 0) messages.push(notice(officers));
  return messages;
}

function emergencyGrant(patient: Patient & { id: string }, practitioner: string, reason: string, now: Date, minutes: number): Consent {
  return {
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: CONSENT_SCOPE, code: 'patient-privacy', display: 'Privacy Consent' }] },
    category: [{ coding: [{ system: ACT_REASON, code: 'BTG', display: 'break the glass' }], text: 'Emergency access grant' }],
    patient: { reference: `Patient/${patient.id}` },
    dateTime: now.toISOString(),
    policyRule: { coding: [{ system: ACT_CODE, code: 'EMRGONLY', display: 'emergency only' }], text: reason },
    provision: {
      type: 'permit',
      period: { start: now.toISOString(), end: new Date(now.getTime() + minutes * 60_000).toISOString() },
      actor: [{ role: { coding: [{ system: PARTICIPATION, code: 'IRCP', display: 'information recipient' }] }, reference: { reference: practitioner } }],
      purpose: [{ system: ACT_REASON, code: 'BTG', display: 'break the glass' }],
    },
  };
}

