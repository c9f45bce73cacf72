import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Knex } from 'knex';
import type { AuthContext, AuthCookie, AuthRequest, AuthResponse } from './auth-exchange';

/**
 * A pending authorization: an /auth/authorize request that passed validation, waiting
 * for the user to sign in, pick a patient and consent. It lives in auth_request (so any
 * server process can continue it) and the browser that started it holds its id in a
 * cookie; every form posted back carries the id and the request's CSRF token, and all
 * three must agree.
 */

export const REQUEST_COOKIE = 'smart_authorization';
/** Time to sign in and consent. */
export const REQUEST_SECONDS = 600;

/** Launch context an EHR created with POST /auth/launch. */
export interface EhrLaunchContext {
  id: string;
  patient?: string;
  encounter?: string;
  needPatientBanner: boolean;
}

/** The validated authorization request. */
export interface AuthorizeParams {
  clientId: string;
  clientName: string;
  redirectUri: string;
  state: string;
  /** What the client asked for and is registered for (grantableScopes), before user and context. */
  scope: string[];
  codeChallenge?: string;
  codeChallengeMethod?: 'S256';
  nonce?: string;
  launch?: EhrLaunchContext;
}

/** Progress through the pages. */
export interface PendingProgress {
  /** Password accepted, TOTP code still to come. */
  totpUserId?: string;
  /** The patient the user chose in the picker. */
  patient?: string;
  /** The encounter chosen in the encounter picker (standalone `launch/encounter`); null: the user went on without one. */
  encounter?: string | null;
}

export interface PendingAuthorization {
  id: string;
  params: AuthorizeParams;
  csrfToken: string;
  /** Set once every factor of the login passed. */
  userId?: string;
  progress: PendingProgress;
  expiresAt: Date;
}

/** A page instead of a redirect: the request cannot (or can no longer) be tied to the client. */
export class PageError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    message: string
  ) {
    super(message);
  }
}

interface RequestRow {
  id: string;
  client_id: string;
  params: AuthorizeParams;
  csrf_token: string;
  user_id: string | null;
  state: PendingProgress;
  expires_at: Date;
}

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export async function createPending(knex: Knex, params: AuthorizeParams): Promise<PendingAuthorization> {
  const row = {
    id: randomToken(),
    client_id: params.clientId,
    params: JSON.stringify(params),
    csrf_token: randomToken(),
    user_id: null,
    state: JSON.stringify({}),
    expires_at: new Date(Date.now() + REQUEST_SECONDS * 1000),
  };
  await knex('auth_request').insert(row);
  // Pending requests nobody finished: swept whenever a new one starts.
  await knex('auth_request').where('expires_at', '<', new Date(Date.now() - REQUEST_SECONDS * 1000)).delete();
  return { id: row.id, params, csrfToken: row.csrf_token, progress: {}, expiresAt: row.expires_at };
}

export async function updatePending(knex: Knex, pending: PendingAuthorization, change: { userId?: string; progress?: PendingProgress }): Promise<void> {
  const update: Record<string, unknown> = {};
  if (change.userId !== undefined) update.user_id = change.userId;
  if (change.progress !== undefined) update.state = JSON.stringify(change.progress);
  await knex('auth_request').where({ id: pending.id }).update(update);
}

export async function deletePending(knex: Knex, id: string): Promise<void> {
  await knex('auth_request').where({ id }).delete();
}

export function requestCookie(pending: PendingAuthorization): AuthCookie {
  return { name: REQUEST_COOKIE, value: pending.id, maxAgeSeconds: REQUEST_SECONDS };
}

const CLEAR_COOKIE: AuthCookie = { name: REQUEST_COOKIE, value: '', maxAgeSeconds: 0 };

const FORGED = new PageError(
  403,
  'Sign-in form not accepted',
  'This form was not sent from the sign-in page of this browser, or that page was replaced by a newer one. Go back to the app and start again.'
);

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function loadPending(knex: Knex, id: string): Promise<PendingAuthorization | undefined> {
  const row: RequestRow | undefined = await knex('auth_request').where({ id }).first();
  if (!row) return undefined;
  if (row.expires_at.getTime() <= Date.now()) {
    await deletePending(knex, id);
    throw new PageError(400, 'Sign-in expired', 'This sign-in took too long and has expired. Go back to the app and start again.');
  }
  return {
    id: row.id,
    params: row.params,
    csrfToken: row.csrf_token,
    userId: row.user_id ?? undefined,
    progress: row.state,
    expiresAt: row.expires_at,
  };
}

/** For a POST form: the cookie, the form's `request` and its `csrf_token` must all match one live pending request (else 403). */
export async function pendingFromForm(req: AuthRequest, ctx: AuthContext): Promise<PendingAuthorization> {
  const cookie = req.cookies[REQUEST_COOKIE];
  const id = req.form.request;
  const csrf = req.form.csrf_token;
  if (!cookie || !id || !csrf || !sameSecret(cookie, id)) throw FORGED;
  const pending = await loadPending(ctx.knex, id);
  if (!pending || !sameSecret(pending.csrfToken, csrf)) throw FORGED;
  return pending;
}

/** For a page (GET): the pending request of this browser's cookie. */
export async function pendingFromCookie(req: AuthRequest, ctx: AuthContext): Promise<PendingAuthorization> {
  const id = req.cookies[REQUEST_COOKIE];
  const pending = id ? await loadPending(ctx.knex, id) : undefined;
  if (!pending) {
    throw new PageError(400, 'No sign-in in progress', 'There is no sign-in in progress in this browser (or it has expired). Go back to the app and start again.');
  }
  return pending;
}

/**
 * Back to the client: `redirect_uri` with the response parameters added to its query
 * (RFC 6749 §4.1.2: keeping any query it already has). 303 after a POST, so the
 * browser follows with a GET.
 */
export function redirectToClient(redirectUri: string, params: Record<string, string | undefined>, status = 303): AuthResponse {
  const url = new URL(redirectUri);
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, value);
  return { status, redirect: url.toString(), cookies: [CLEAR_COOKIE], headers: { 'Cache-Control': 'no-store' } };
}

/** An error for the client (RFC 6749 §4.1.2.1) that ends the pending request. */
export async function finishWithError(ctx: AuthContext, pending: PendingAuthorization, error: string, description: string): Promise<AuthResponse> {
  await deletePending(ctx.knex, pending.id);
  return redirectToClient(pending.params.redirectUri, { error, error_description: description, state: pending.params.state });
}

/** PRG: after a successful POST, the browser GETs the next page. */
export function seeOther(path: string, cookies?: AuthCookie[]): AuthResponse {
  return { status: 303, redirect: path, cookies, headers: { 'Cache-Control': 'no-store' } };
}

/**
 * A page of a pending request. Its forms may end in a redirect to the client (the code,
 * or an error), so the client's redirect_uri joins the page's CSP form-action.
 */
export function pendingPage(pending: PendingAuthorization, html: string, cookies?: AuthCookie[]): AuthResponse {
  return { status: 200, html, cookies, formTargets: [pending.params.redirectUri] };
}
