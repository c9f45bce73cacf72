import type { Encounter } from '@medplum/fhirtypes';
import { isValidId } from '../core/ids';
import { isOperationOutcomeError } from '../core/outcome';
import { encodeCursor } from '../search/page-cursor';
import { parseSearchRequest } from '../search/parse-search-request';
import type { AuthContext, AuthRequest, AuthResponse } from './auth-exchange';
import { encounterPickerPage, type PickerEncounter } from './pages/encounter-picker-page';
import { patientContextFor, patientSummary, pickerStore } from './patient-picker';
import { PageError, pendingFromCookie, pendingFromForm, pendingPage, seeOther, updatePending, type PendingAuthorization } from './pending-authorization';
import { findUserById } from './user-store';

/**
 * The encounter picker of a standalone launch that asks for `launch/encounter` (SMART App
 * Launch 2, capability `context-standalone-encounter`): once the patient is known (the
 * patient picker's choice, or a Patient user themself), the user chooses one of that
 * patient's encounters, latest first, among those a `user/Encounter.rs` token of theirs
 * would reach, or goes on without one (then `launch/encounter` is not granted).
 */

const PAGE_SIZE = 10;
const SEARCH_OPTIONS = { strict: false, defaultCount: PAGE_SIZE, maxCount: PAGE_SIZE };

/** GET /auth/encounter-picker?cursor=…: the patient's encounters, a page at a time. */
export async function showEncounterPicker(req: AuthRequest, ctx: AuthContext): Promise<AuthResponse> {
  const pending = await pendingFromCookie(req, ctx);
  const patient = await patientToPickFor(ctx, pending);
  if (typeof patient !== 'string') return patient;
  return pickerResponse(ctx, pending, patient, req.query.cursor);
}

/** POST /auth/encounter-picker: the chosen encounter (or none, an empty value) joins the launch context; on to consent. */
export async function pickEncounter(req: AuthRequest, ctx: AuthContext): Promise<AuthResponse> {
  const pending = await pendingFromForm(req, ctx);
  const patient = await patientToPickFor(ctx, pending);
  if (typeof patient !== 'string') return patient;
  const id = req.form.encounter ?? '';
  if (id !== '') {
    const store = await pickerStore(ctx, pending, 'Encounter');
    // A FHIR id, checked before it goes into a search (where a comma would be an OR of ids).
    const found = isValidId(id)
      ? await store.matchingIds(parseSearchRequest('Encounter', { _id: id, patient: `Patient/${patient}` }, SEARCH_OPTIONS)).catch(() => [] as string[])
      : [];
    if (!found.includes(id)) {
      return pickerResponse(ctx, pending, patient, undefined, "That encounter is not one of this patient's within your reach (or no longer exists). Choose another one.");
    }
  }
  await updatePending(ctx.knex, pending, { progress: { ...pending.progress, encounter: id === '' ? null : id } });
  return seeOther('/auth/consent');
}

/** The patient whose encounters are to choose from; otherwise the consent page, which knows where the request stands. */
async function patientToPickFor(ctx: AuthContext, pending: PendingAuthorization): Promise<string | AuthResponse> {
  const user = pending.userId ? await findUserById(ctx.knex, pending.userId) : undefined;
  if (!user) throw new PageError(403, 'Not signed in', 'Sign in first: go back to the app and start again.');
  const context = patientContextFor(pending, user);
  return context.kind === 'pick-encounter' ? context.patient : seeOther('/auth/consent');
}

async function pickerResponse(ctx: AuthContext, pending: PendingAuthorization, patient: string, cursor: string | undefined, error?: string): Promise<AuthResponse> {
  const query: Record<string, string> = { patient: `Patient/${patient}`, _sort: '-date', _count: String(PAGE_SIZE) };
  let request;
  try {
    request = parseSearchRequest('Encounter', cursor ? { ...query, _cursor: cursor } : query, SEARCH_OPTIONS);
  } catch (err) {
    // A cursor that was tampered with: the first page.
    if (!isOperationOutcomeError(err) || !cursor) throw err;
    request = parseSearchRequest('Encounter', query, SEARCH_OPTIONS);
  }
  const store = await pickerStore(ctx, pending, 'Encounter');
  const result = await store.search(request).catch((err: unknown) => {
    // A user whose role reads no Encounter: nothing to choose, they go on without.
    if (isOperationOutcomeError(err) && err.status === 403) return { resources: [], next: undefined, previous: undefined };
    throw err;
  });
  const summary = await patientSummary(ctx, patient);
  const link = (c: Parameters<typeof encodeCursor>[0]): string => `/auth/encounter-picker?${new URLSearchParams({ cursor: encodeCursor(c) })}`;
  return pendingPage(
    pending,
    encounterPickerPage({
      requestId: pending.id,
      csrfToken: pending.csrfToken,
      clientName: pending.params.clientName,
      patientLabel: `${summary.name}${summary.birthDate ? ` (born ${summary.birthDate})` : ''}`,
      encounters: result.resources.map((r) => pickerEncounter(r as Encounter)),
      nextUrl: result.next ? link(result.next) : undefined,
      previousUrl: result.previous ? link(result.previous) : undefined,
      error,
    })
  );
}

function pickerEncounter(encounter: Encounter): PickerEncounter {
  const type = encounter.type?.[0];
  const what = type?.text ?? type?.coding?.find((c) => c.display)?.display ?? encounter.serviceType?.text ?? 'Encounter';
  const kind = encounter.class?.display ?? encounter.class?.code;
  const { start, end } = encounter.period ?? {};
  const period = start || end ? `${start?.slice(0, 10) ?? '…'}${end && end.slice(0, 10) !== start?.slice(0, 10) ? ` – ${end.slice(0, 10)}` : ''}` : undefined;
  return { id: encounter.id as string, label: kind ? `${what} (${kind})` : what, period, status: encounter.status };
}
