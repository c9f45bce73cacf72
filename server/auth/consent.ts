import { parseScope } from '../access/scopes';
import type { AuthContext, AuthRequest, AuthResponse } from './auth-exchange';
import { consentPage, type ConsentItem } from './pages/consent-page';
import { describeScope } from './pages/scope-description';
import { patientContextFor, patientSummary, type PatientContext } from './patient-picker';
import {
  finishWithError,
  pendingPage,
  PageError,
  pendingFromCookie,
  pendingFromForm,
  randomToken,
  redirectToClient,
  seeOther,
  type AuthorizeParams,
  type PendingAuthorization,
} from './pending-authorization';
import { hashToken } from './secret-hash';
import { findUserById, type UserAccount } from './user-store';

/** Launch-context scopes: listed on the consent page, not optional (they only say which patient or encounter). */
const CONTEXT_SCOPES = new Set(['launch', 'launch/patient', 'launch/encounter']);

/**
 * What the user is asked to grant: the client's grantable scopes, less what this launch
 * cannot give. `system/` scopes are never granted through a user's authorization (they
 * are for SMART Backend Services); `patient/` scopes need a patient in context; `launch`
 * needs an EHR launch, `launch/encounter` an encounter from it.
 */
export function offeredScopes(params: AuthorizeParams, context: PatientContext): string[] {
  const patient = context.kind === 'patient' ? context.patient : undefined;
  const encounter = context.kind === 'patient' ? context.encounter : undefined;
  return params.scope.filter((raw) => {
    const scope = parseScope(raw);
    if (!scope) return false;
    if (scope.kind === 'resource') {
      if (scope.context === 'system') return false;
      return scope.context === 'patient' ? patient !== undefined : true;
    }
    if (raw === 'launch') return params.launch !== undefined;
    if (raw === 'launch/patient') return patient !== undefined;
    if (raw === 'launch/encounter') return encounter !== undefined;
    return true;
  });
}

interface ConsentState {
  user: UserAccount;
  context: PatientContext;
  offered: string[];
}

/**
 * The signed-in user of a pending request, and its patient context; or the response that
 * comes first: the picker when a patient is still to choose, an access_denied redirect
 * when the launch is not for this user.
 */
async function consentState(ctx: AuthContext, pending: PendingAuthorization): Promise<ConsentState | AuthResponse> {
  const user = pending.userId ? await findUserById(ctx.knex, pending.userId) : undefined;
  if (!user) throw new PageError(403, 'Not signed in', 'Sign in first: go back to the app and start again.');
  const context = patientContextFor(pending, user);
  if (context.kind === 'pick') return seeOther('/auth/patient-picker');
  if (context.kind === 'pick-encounter') return seeOther('/auth/encounter-picker');
  if (context.kind === 'denied') return finishWithError(ctx, pending, 'access_denied', context.reason);
  return { user, context, offered: offeredScopes(pending.params, context) };
}

function isResponse(value: ConsentState | AuthResponse): value is AuthResponse {
  return 'status' in value;
}

/** GET /auth/consent: what the app asks for, in words, each optional scope a ticked checkbox; Allow and Deny. */
export async function showConsent(req: AuthRequest, ctx: AuthContext): Promise<AuthResponse> {
  const pending = await pendingFromCookie(req, ctx);
  const state = await consentState(ctx, pending);
  if (isResponse(state)) return state;
  return pendingPage(pending, await renderConsent(ctx, pending, state));
}

/** POST /auth/consent: Deny → access_denied; Allow → an authorization code for what stayed ticked. */
export async function decideConsent(req: AuthRequest, ctx: AuthContext): Promise<AuthResponse> {
  const pending = await pendingFromForm(req, ctx);
  const state = await consentState(ctx, pending);
  if (isResponse(state)) return state;
  if (req.form.decision !== 'allow') return finishWithError(ctx, pending, 'access_denied', 'The user denied access');

  const approved = state.offered.filter((scope, i) => CONTEXT_SCOPES.has(scope) || req.form[`scope_${i}`] === scope);
  if (state.offered.some((s) => !CONTEXT_SCOPES.has(s)) && approved.every((s) => CONTEXT_SCOPES.has(s))) {
    return pendingPage(pending, await renderConsent(ctx, pending, state, 'Tick at least one kind of access, or choose Deny.'));
  }
  return issueCode(ctx, pending, state.user, state.context, approved);
}

async function renderConsent(ctx: AuthContext, pending: PendingAuthorization, state: ConsentState, error?: string): Promise<string> {
  const patient = state.context.kind === 'patient' ? state.context.patient : undefined;
  const summary = patient ? await patientSummary(ctx, patient) : undefined;
  const label = summary ? `${summary.name}${summary.birthDate ? ` (born ${summary.birthDate})` : ''}` : undefined;
  const audience = { self: patient !== undefined && state.user.fhirUser === `Patient/${patient}`, patientName: summary?.name };
  const items: ConsentItem[] = state.offered.map((scope) => ({ scope, text: describeScope(scope, audience), optional: !CONTEXT_SCOPES.has(scope) }));
  return consentPage({
    requestId: pending.id,
    csrfToken: pending.csrfToken,
    clientName: pending.params.clientName,
    patientLabel: label,
    items,
    error,
  });
}

/**
 * The authorization code (RFC 6749 §4.1.2): 256 random bits, stored only as its hash with
 * everything the token endpoint needs, and the pending request consumed in the same
 * transaction, so that a form posted twice cannot yield two codes.
 */
async function issueCode(ctx: AuthContext, pending: PendingAuthorization, user: UserAccount, context: PatientContext, granted: string[]): Promise<AuthResponse> {
  const { params } = pending;
  const patientInContext = context.kind === 'patient' ? context : undefined;
  const hasPatientAccess = granted.some((s) => s === 'launch' || s === 'launch/patient' || s.startsWith('patient/'));
  const hasEncounterAccess = granted.includes('launch') || granted.includes('launch/encounter');
  const code = randomToken(32);
  const issued = await ctx.knex.transaction(async (tx) => {
    const deleted = await tx('auth_request').where({ id: pending.id }).delete();
    if (deleted === 0) return false;
    await tx('auth_code').insert({
      code_hash: hashToken(code),
      client_id: params.clientId,
      user_id: user.id,
      redirect_uri: params.redirectUri,
      scope: granted.join(' '),
      code_challenge: params.codeChallenge ?? null,
      code_challenge_method: params.codeChallengeMethod ?? null,
      nonce: params.nonce ?? null,
      patient: hasPatientAccess ? (patientInContext?.patient ?? null) : null,
      encounter: hasEncounterAccess ? (patientInContext?.encounter ?? null) : null,
      // Standalone launches always need the app to show which patient it is on; an EHR says whether its own UI already does.
      need_patient_banner: params.launch ? params.launch.needPatientBanner : true,
      expires_at: new Date(Date.now() + ctx.config.auth.codeSeconds * 1000),
    });
    return true;
  });
  if (!issued) throw new PageError(400, 'Already answered', 'This request was already answered. Go back to the app.');
  return redirectToClient(params.redirectUri, { code, state: params.state });
}
