import type { HumanName, Patient } from '@medplum/fhirtypes';
import { isOperationOutcomeError } from '../core/outcome';
import { encodeCursor } from '../search/page-cursor';
import { parseSearchRequest } from '../search/parse-search-request';
import type { AuthContext, AuthRequest, AuthResponse } from './auth-exchange';
import { patientPickerPage, type PickerPatient } from './pages/patient-picker-page';
import {
  pendingPage,
  PageError,
  pendingFromCookie,
  pendingFromForm,
  seeOther,
  updatePending,
  type PendingAuthorization,
} from './pending-authorization';
import { findUserById, type UserAccount } from './user-store';
import { GuardedStore } from '../access/guarded-store';
import type { Principal } from '../access/principal';
import { accessFor } from '../access/principal-access';
import type { SearchRequest } from '../search/search-request';
import type { ResourceStore } from '../storage/resource-store';

/**
 * The patient a SMART launch runs for (scopes-and-launch-context.html#launch-context-arrives-with-your-access_token):
 * - EHR launch: the EHR's launch context (a Patient user may only be launched for themself);
 * - a Patient user: themself, whenever `launch/patient`, `launch/encounter` or any `patient/` scope was asked for;
 * - anyone else asking for `launch/patient` or `launch/encounter`: whom they choose in the patient picker;
 * - otherwise none, and `patient/` scopes are not granted.
 * A standalone launch asking for `launch/encounter` then has the user choose one of that
 * patient's encounters, or none (encounter-picker.ts): `pick-encounter` until they did.
 */
export type PatientContext =
  | { kind: 'none' }
  | { kind: 'patient'; patient: string; encounter?: string }
  | { kind: 'pick' }
  | { kind: 'pick-encounter'; patient: string }
  | { kind: 'denied'; reason: string };

export function patientContextFor(pending: PendingAuthorization, user: UserAccount): PatientContext {
  const own = user.fhirUser.startsWith('Patient/') ? user.fhirUser.slice('Patient/'.length) : undefined;
  const { launch, scope } = pending.params;
  if (launch?.patient) {
    if (own !== undefined && own !== launch.patient) return { kind: 'denied', reason: 'The EHR launch is for another patient than the signed-in user' };
    return { kind: 'patient', patient: launch.patient, encounter: launch.encounter };
  }
  const wantsEncounter = scope.includes('launch/encounter');
  const wantsPatient = wantsEncounter || scope.includes('launch/patient') || scope.some((s) => s.startsWith('patient/'));
  const patient = own ?? pending.progress.patient;
  if (patient === undefined) return own === undefined && (scope.includes('launch/patient') || wantsEncounter) ? { kind: 'pick' } : { kind: 'none' };
  if (!wantsPatient) return { kind: 'none' };
  if (!wantsEncounter) return { kind: 'patient', patient };
  const encounter = pending.progress.encounter;
  if (encounter === undefined) return { kind: 'pick-encounter', patient };
  return { kind: 'patient', patient, ...(encounter !== null ? { encounter } : {}) };
}

const PAGE_SIZE = 10;

/** GET /auth/patient-picker?name=…&cursor=…: the patients to choose from, a page at a time. */
export async function showPatientPicker(req: AuthRequest, ctx: AuthContext): Promise<AuthResponse> {
  const pending = await pendingFromCookie(req, ctx);
  if (!pending.userId) throw new PageError(403, 'Not signed in', 'Sign in first: go back to the app and start again.');
  return pickerResponse(ctx, pending, req.query.name ?? '', req.query.cursor);
}

/** POST /auth/patient-picker: the chosen patient becomes the launch context; on to consent. */
export async function pickPatient(req: AuthRequest, ctx: AuthContext): Promise<AuthResponse> {
  const pending = await pendingFromForm(req, ctx);
  if (!pending.userId) throw new PageError(403, 'Not signed in', 'Sign in first: go back to the app and start again.');
  const id = req.form.patient ?? '';
  const store = await pickerStore(ctx, pending);
  const visible = await store.matchingIds(patientById(id)).catch(() => [] as string[]);
  if (!(await patientExists(ctx, id)) || visible.length === 0) {
    return pickerResponse(ctx, pending, '', undefined, 'That patient does not exist (any more). Choose another one.');
  }
  await updatePending(ctx.knex, pending, { progress: { ...pending.progress, patient: id } });
  return seeOther('/auth/consent');
}

export async function patientExists(ctx: AuthContext, id: string): Promise<boolean> {
  if (!/^[A-Za-z0-9\-.]{1,64}$/.test(id)) return false;
  try {
    const version = await ctx.repo.read('Patient', id);
    return !version.deleted;
  } catch (err) {
    if (isOperationOutcomeError(err) && (err.status === 404 || err.status === 410)) return false;
    throw err;
  }
}

/** The patient's name and birth date for the consent page; `Patient <id>` when it cannot be read. */
export async function patientSummary(ctx: AuthContext, id: string): Promise<{ name: string; birthDate?: string }> {
  try {
    const patient = (await ctx.repo.read('Patient', id)).resource as Patient | undefined;
    return patient ? { name: displayName(patient), birthDate: patient.birthDate } : { name: `Patient ${id}` };
  } catch (err) {
    if (isOperationOutcomeError(err)) return { name: `Patient ${id}` };
    throw err;
  }
}

async function pickerResponse(ctx: AuthContext, pending: PendingAuthorization, nameFilter: string, cursor: string | undefined, error?: string): Promise<AuthResponse> {
  const query: Record<string, string> = { _count: String(PAGE_SIZE) };
  if (nameFilter.trim() !== '') query.name = nameFilter.trim();
  if (cursor) query._cursor = cursor;
  const options = { strict: false, defaultCount: PAGE_SIZE, maxCount: PAGE_SIZE };
  let request;
  try {
    request = parseSearchRequest('Patient', query, options);
  } catch (err) {
    // A cursor that was tampered with or outlived a change of the filter: the first page.
    if (!isOperationOutcomeError(err) || !cursor) throw err;
    delete query._cursor;
    request = parseSearchRequest('Patient', query, options);
  }
  // Only the patients the user may see (their hospital, Consent): the same rules as their token's.
  // A user who may see no Patient at all gets an empty picker, not an error.
  const store = await pickerStore(ctx, pending);
  const result = await store.search(request).catch((err: unknown) => {
    if (isOperationOutcomeError(err) && err.status === 403) return { resources: [], next: undefined, previous: undefined };
    throw err;
  });
  const patients: PickerPatient[] = result.resources.map((r) => {
    const patient = r as Patient;
    return { id: patient.id as string, name: displayName(patient), birthDate: patient.birthDate };
  });
  const link = (c: Parameters<typeof encodeCursor>[0]): string => {
    const params = new URLSearchParams();
    if (nameFilter.trim() !== '') params.set('name', nameFilter.trim());
    params.set('cursor', encodeCursor(c));
    return `/auth/patient-picker?${params}`;
  };
  return pendingPage(
    pending,
    patientPickerPage({
      requestId: pending.id,
      csrfToken: pending.csrfToken,
      clientName: pending.params.clientName,
      nameFilter,
      patients,
      nextUrl: result.next ? link(result.next) : undefined,
      previousUrl: result.previous ? link(result.previous) : undefined,
      error,
    })
  );
}

/**
 * The FHIR store as the signed-in user sees `type` (Patients, or Encounters for the
 * encounter picker): what a `user/<type>.rs` token of theirs would reach (role, hospital
 * boundary, Consent).
 */
export async function pickerStore(ctx: AuthContext, pending: PendingAuthorization, type = 'Patient'): Promise<ResourceStore> {
  const user = pending.userId ? await findUserById(ctx.knex, pending.userId) : undefined;
  if (!user) throw new PageError(403, 'Not signed in', 'Sign in first: go back to the app and start again.');
  const principal: Principal = {
    tokenId: `picker-${pending.id}`,
    clientId: pending.params.clientId,
    userId: user.id,
    fhirUser: user.fhirUser,
    role: user.role,
    scope: `user/${type}.rs`,
    expiresAt: Math.floor(Date.now() / 1000) + 60,
  };
  return new GuardedStore(ctx.repo, await accessFor(principal, ctx.repo, [], { patientDependants: ctx.config.patientDependants }));
}

function patientById(id: string): SearchRequest {
  return { resourceType: 'Patient', filters: [{ kind: 'id', not: false, ids: [id] }], sort: [], count: 1, offset: 0, total: 'none', warnings: [] };
}

export function displayName(patient: Patient): string {
  const names = patient.name ?? [];
  const name: HumanName | undefined = names.find((n) => n.use === 'official') ?? names.find((n) => n.use !== 'old') ?? names[0];
  const text = name?.text ?? [...(name?.prefix ?? []), ...(name?.given ?? []), name?.family, ...(name?.suffix ?? [])].filter(Boolean).join(' ');
  return text || `Patient ${patient.id}`;
}
