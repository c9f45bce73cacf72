import type { Encounter } from '@medplum/fhirtypes';
import type { Principal } from '../access/principal';
import { parseScope, splitScopes } from '../access/scopes';
import { isOperationOutcomeError } from '../core/outcome';
import { OAuthError, invalidRequest, type AuthContext, type AuthRequest, type AuthResponse } from './auth-exchange';
import { patientExists } from './patient-picker';
import { randomToken } from './pending-authorization';

/** An EHR opens the app right after creating the context; the app's authorize request follows within seconds. */
export const LAUNCH_SECONDS = 600;

const ID = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * Whether a token may create EHR launch contexts: a token of a backend system (no user:
 * SMART Backend Services or client credentials) whose `system/` scopes let it read the
 * Patient, and the Encounter when it names one. An EHR integration has these; an app
 * acting for a user never does, so no user can point someone else's app at a patient.
 */
export function mayCreateLaunch(principal: Principal, withEncounter: boolean): boolean {
  if (principal.userId !== undefined) return false;
  const scopes = splitScopes(principal.scope).map(parseScope);
  const canRead = (type: string): boolean =>
    scopes.some((s) => s?.kind === 'resource' && s.context === 'system' && (s.resourceType === '*' || s.resourceType === type) && s.permissions.has('r') && s.query === undefined);
  return canRead('Patient') && (!withEncounter || canRead('Encounter'));
}

/**
 * POST /auth/launch { patient, encounter?, need_patient_banner? } → 201 { launch, expires_in }.
 * The EHR then opens `app_launch_url?iss=<FHIR base>&launch=<launch>` (SMART App Launch,
 * "EHR launch"); the app passes `launch` on to /auth/authorize, which takes the patient
 * and encounter from here.
 */
export async function createLaunch(req: AuthRequest, ctx: AuthContext): Promise<AuthResponse> {
  const principal = req.principal;
  if (!principal) {
    throw new OAuthError(401, 'invalid_token', 'A valid bearer access token of the EHR is required', {
      'WWW-Authenticate': `Bearer realm="${ctx.issuer}", error="invalid_token"`,
    });
  }
  const body = req.json;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidRequest('The body must be a JSON object { "patient": "<id>", "encounter"?: "<id>" }');
  const { patient, encounter, need_patient_banner: banner } = body as Record<string, unknown>;
  if (typeof patient !== 'string' || !ID.test(patient)) throw invalidRequest('patient must be the id of a Patient');
  if (encounter !== undefined && (typeof encounter !== 'string' || !ID.test(encounter))) throw invalidRequest('encounter must be the id of an Encounter');
  if (banner !== undefined && typeof banner !== 'boolean') throw invalidRequest('need_patient_banner must be true or false');
  if (!mayCreateLaunch(principal, encounter !== undefined)) {
    throw new OAuthError(403, 'insufficient_scope', 'Creating a launch context needs a system token that may read Patient (and Encounter): e.g. system/Patient.r', {
      'WWW-Authenticate': `Bearer realm="${ctx.issuer}", error="insufficient_scope", scope="system/Patient.r"`,
    });
  }
  if (!(await patientExists(ctx, patient))) throw invalidRequest(`Patient/${patient} does not exist`);
  if (encounter !== undefined) {
    const subject = await encounterSubject(ctx, encounter);
    if (subject === undefined) throw invalidRequest(`Encounter/${encounter} does not exist`);
    if (subject !== `Patient/${patient}`) throw invalidRequest(`Encounter/${encounter} is not an encounter of Patient/${patient}`);
  }

  const id = randomToken(24);
  await ctx.knex('auth_launch').insert({
    id,
    patient,
    encounter: encounter ?? null,
    need_patient_banner: banner ?? true,
    created_by: principal.clientId,
    expires_at: new Date(Date.now() + LAUNCH_SECONDS * 1000),
  });
  // Launches nobody used: swept whenever a new one is made.
  await ctx.knex('auth_launch').where('expires_at', '<', new Date(Date.now() - LAUNCH_SECONDS * 1000)).delete();
  return { status: 201, json: { launch: id, expires_in: LAUNCH_SECONDS }, headers: { 'Cache-Control': 'no-store' } };
}

/** `Patient/123` (relative, as stored) for an existing Encounter; undefined when there is none. */
async function encounterSubject(ctx: AuthContext, id: string): Promise<string | null | undefined> {
  try {
    const version = await ctx.repo.read('Encounter', id);
    if (version.deleted || !version.resource) return undefined;
    const reference = (version.resource as Encounter).subject?.reference ?? null;
    return reference?.replace(`${ctx.fhirBase}/`, '') ?? null;
  } catch (err) {
    if (isOperationOutcomeError(err) && (err.status === 404 || err.status === 410)) return undefined;
    throw err;
  }
}
