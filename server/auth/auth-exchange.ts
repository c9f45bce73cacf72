import type { Knex } from 'knex';
import type { Principal } from '../access/principal';
import type { Config } from '../config';
import type { Repository } from '../storage/repository';

/**
 * An HTTP request to an OAuth / SMART endpoint as the handlers in auth/ see it: plain
 * data, no Koa (http/auth-routes.ts builds it). Query and form values are the first
 * value of each name.
 */
export interface AuthRequest {
  method: 'GET' | 'POST';
  path: string;
  query: Record<string, string | undefined>;
  /** An application/x-www-form-urlencoded body; a parameter sent twice is refused by the adapter (RFC 6749 §3.1). */
  form: Record<string, string | undefined>;
  /** A JSON body (e.g. the EHR launch endpoint). */
  json?: unknown;
  /** Lower-case header names. */
  headers: Record<string, string | undefined>;
  cookies: Record<string, string | undefined>;
  /** The caller's address (X-Forwarded-For honoured: app.proxy). */
  ip: string;
  /**
   * The origin the request was sent to (`http://127.0.0.1:8080`; X-Forwarded-Proto/Host
   * honoured). Besides PUBLIC_URL, clients may name this server by it: the same server
   * reached as localhost or 127.0.0.1 is still this server.
   */
  origin: string;
  /** The verified bearer token, when the request carried a valid one. */
  principal?: Principal;
}

export interface AuthCookie {
  name: string;
  /** Empty with maxAgeSeconds 0 deletes the cookie. */
  value: string;
  maxAgeSeconds: number;
}

/** What an auth handler answers; exactly one of json, html or redirect. */
export interface AuthResponse {
  status: number;
  json?: unknown;
  html?: string;
  /** Sent as `Location` (status 302 or 303). */
  redirect?: string;
  headers?: Record<string, string>;
  cookies?: AuthCookie[];
  /**
   * For an html page: where its forms may lead besides this server. A form whose answer
   * redirects to a client's redirect_uri (consent → code) needs that URI's origin in the
   * page's CSP form-action, since browsers check form-action on every redirect of a form
   * submission (CSP 3 §6.4.3).
   */
  formTargets?: string[];
}

/** Shared services of the authorization server, built once at start. */
export interface AuthContext {
  knex: Knex;
  config: Config;
  /** The FHIR store, for the patient picker and for checking fhirUser / launch resources. */
  repo: Repository;
  /** PUBLIC_URL: the issuer of every token. */
  issuer: string;
  /** PUBLIC_URL/fhir: the audience of access tokens. */
  fhirBase: string;
}

/** Verifies an access token: the principal, or undefined for a token that is not (or no longer) valid. */
export type BearerVerifier = (token: string) => Promise<Principal | undefined>;

export type AuthHandler = (req: AuthRequest, ctx: AuthContext) => Promise<AuthResponse>;

export interface AuthRoute {
  method: 'GET' | 'POST';
  path: string;
  handler: AuthHandler;
  /** Browser apps on other origins call it (discovery, token, ...): CORS allowed. */
  cors?: boolean;
}

/**
 * An OAuth 2 error response (RFC 6749 §5.2): `{ error, error_description }` as JSON with
 * Cache-Control: no-store. Thrown by auth handlers, rendered by the adapter.
 */
export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
    readonly headers: Record<string, string> = {}
  ) {
    super(description);
  }
}

export const invalidRequest = (description: string): OAuthError => new OAuthError(400, 'invalid_request', description);
export const invalidGrant = (description: string): OAuthError => new OAuthError(400, 'invalid_grant', description);
export const invalidScope = (description: string): OAuthError => new OAuthError(400, 'invalid_scope', description);
export const unauthorizedClient = (description: string): OAuthError => new OAuthError(400, 'unauthorized_client', description);
/** Client authentication failed (RFC 6749 §5.2): 401, with a challenge when the client tried HTTP Basic. */
export const invalidClient = (description: string, basic = false): OAuthError =>
  new OAuthError(401, 'invalid_client', description, basic ? { 'WWW-Authenticate': 'Basic realm="token"' } : {});
