import type { Knex } from 'knex';
import { grantableScopes, splitScopes } from '../access/scopes';
import type { AuthContext, AuthRequest, AuthResponse } from './auth-exchange';
import { findClient } from './client-store';
import { loginPage } from './pages/login-page';
import {
  createPending,
  pendingPage,
  PageError,
  redirectToClient,
  requestCookie,
  type AuthorizeParams,
  type EhrLaunchContext,
} from './pending-authorization';

/**
 * The authorization endpoint (RFC 6749 §4.1.1, SMART App Launch "Obtain authorization
 * code"), by GET or by POST form ("authorize-post"). The client and its redirect_uri are
 * checked first and a failure there is a page, never a redirect (RFC 6749 §4.1.2.1: a
 * redirect to an unverified URI would make this an open redirector); every later error
 * goes back to the client. A valid request becomes a pending authorization bound to this
 * browser by a cookie, and the login page.
 */
export async function authorize(req: AuthRequest, ctx: AuthContext): Promise<AuthResponse> {
  const p = req.method === 'POST' ? req.form : req.query;
  const clientId = p.client_id;
  if (!clientId) throw new PageError(400, 'Unknown application', 'The sign-in request does not say which application it is for (no client_id).');
  const client = await findClient(ctx.knex, clientId);
  if (!client) throw new PageError(400, 'Unknown application', 'The application that sent you here is not registered with this server.');
  const redirectUri = p.redirect_uri;
  if (!redirectUri || !client.redirectUris.includes(redirectUri)) {
    throw new PageError(400, 'Unknown return address', 'The application asked to return to an address that is not registered for it, so you were not sent back.');
  }

  const status = req.method === 'POST' ? 303 : 302;
  const state = p.state;
  const fail = (error: string, description: string): AuthResponse => redirectToClient(redirectUri, { error, error_description: description, state }, status);

  if (!p.response_type) return fail('invalid_request', 'response_type is required');
  if (p.response_type !== 'code') return fail('unsupported_response_type', 'Only response_type=code is supported');
  // SMART App Launch 2.0: state is required (and protects the client from CSRF).
  if (!state) return fail('invalid_request', 'state is required');
  if (!p.aud) return fail('invalid_request', 'aud is required: the FHIR base URL the app wants to access');
  // This server's FHIR base as PUBLIC_URL names it, or as the browser reached it (aud protects
  // the app from being sent to another server; both names are this one).
  const bases = [ctx.fhirBase, `${req.origin}/fhir`].map(withoutTrailingSlash);
  if (!bases.includes(withoutTrailingSlash(p.aud))) {
    return fail('invalid_request', `aud must be this server's FHIR base URL (${ctx.fhirBase})`);
  }

  // PKCE (RFC 7636; SMART 2.0 requires S256 and forbids plain).
  const challenge = p.code_challenge;
  const method = p.code_challenge_method;
  if (challenge === undefined) {
    if (method !== undefined) return fail('invalid_request', 'code_challenge_method without code_challenge');
    if (client.public) return fail('invalid_request', 'code_challenge (PKCE, S256) is required for public clients');
  } else {
    if (method !== 'S256') return fail('invalid_request', 'code_challenge_method must be S256 (plain is not accepted)');
    if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(challenge)) return fail('invalid_request', 'code_challenge is malformed');
  }

  const requested = splitScopes(p.scope);
  if (requested.length === 0) return fail('invalid_scope', 'scope is required');
  const scope = grantableScopes(requested, splitScopes(client.scope));
  if (scope.length === 0) return fail('invalid_scope', 'None of the requested scopes may be granted to this client');

  let launch: EhrLaunchContext | undefined;
  if (p.launch !== undefined) {
    launch = await findLaunch(ctx.knex, p.launch);
    if (!launch) return fail('invalid_request', 'launch is unknown or expired');
  }

  const params: AuthorizeParams = {
    clientId: client.id,
    clientName: client.name ?? client.id,
    redirectUri,
    state,
    scope,
    codeChallenge: challenge,
    codeChallengeMethod: challenge === undefined ? undefined : 'S256',
    nonce: p.nonce,
    launch,
  };
  const pending = await createPending(ctx.knex, params);
  return pendingPage(pending, loginPage({ requestId: pending.id, csrfToken: pending.csrfToken, clientName: params.clientName }), [requestCookie(pending)]);
}

function withoutTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

interface LaunchRow {
  id: string;
  patient: string | null;
  encounter: string | null;
  need_patient_banner?: boolean | null;
}

async function findLaunch(knex: Knex, id: string): Promise<EhrLaunchContext | undefined> {
  const row: LaunchRow | undefined = await knex('auth_launch').where({ id }).where('expires_at', '>', knex.fn.now()).first();
  if (!row) return undefined;
  return {
    id: row.id,
    patient: row.patient ?? undefined,
    encounter: row.encounter ?? undefined,
    needPatientBanner: row.need_patient_banner ?? true,
  };
}
