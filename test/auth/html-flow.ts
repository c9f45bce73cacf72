import { createHash, randomBytes } from 'node:crypto';
import { saveClient, type NewClient } from '../../server/auth/client-store';
import { hashToken } from '../../server/auth/secret-hash';
import { saveUser, type NewUser } from '../../server/auth/user-store';
import { mintToken } from '../support/mint-token';
import type { TestServer } from '../support/test-server';

/**
 * Drives the authorization server's pages over plain HTTP as a browser would: a cookie
 * jar, redirects not followed (the tests look at them), forms read from the HTML.
 */
export class CookieBrowser {
  readonly cookies = new Map<string, string>();

  async fetch(url: string, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Page> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.cookies.size > 0) headers.Cookie = [...this.cookies].map(([n, v]) => `${n}=${v}`).join('; ');
    let body: string | undefined;
    if (init.form) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    const res = await fetch(url, { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair, ...attributes] = cookie.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return { status: res.status, location: res.headers.get('location') ?? undefined, html: await res.text(), headers: res.headers };
  }

  get(url: string): Promise<Page> {
    return this.fetch(url);
  }

  post(url: string, form: Record<string, string>): Promise<Page> {
    return this.fetch(url, { form });
  }
}

export interface Page {
  status: number;
  location?: string;
  html: string;
  headers: Headers;
}

function unescapeHtml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39|#96);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#96': '`' })[e] as string);
}

function attribute(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return m ? unescapeHtml(m[1]) : undefined;
}

/** The hidden fields of the page's POST forms (request id and CSRF token). */
export function hiddenFields(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [tag] of html.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) out[attribute(tag, 'name') as string] = attribute(tag, 'value') ?? '';
  return out;
}

/** The ticked checkboxes of the page, as a browser would submit them. */
export function checkedBoxes(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [tag] of html.matchAll(/<input[^>]*type="checkbox"[^>]*>/g)) {
    if (/\schecked/.test(tag)) out[attribute(tag, 'name') as string] = attribute(tag, 'value') ?? 'on';
  }
  return out;
}

/** The `patient` buttons of the picker: value and text. */
export function pickerButtons(html: string): { id: string; text: string }[] {
  return [...html.matchAll(/<button type="submit" name="patient" value="([^"]*)">([\s\S]*?)<\/button>/g)].map((m) => ({
    id: unescapeHtml(m[1]),
    text: unescapeHtml(m[2].replace(/<[^>]*>/g, '')),
  }));
}

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export const REDIRECT_URI = 'http://127.0.0.1:9/callback';

export async function registerApp(server: TestServer, client: Partial<NewClient> & { id: string }): Promise<void> {
  await saveClient(server.server.knex, {
    public: true,
    redirectUris: [REDIRECT_URI],
    scope: 'launch launch/patient launch/encounter patient/*.rs user/*.rs openid fhirUser offline_access',
    ...client,
  });
}

export async function registerUser(server: TestServer, user: Partial<NewUser> & { username: string; fhirUser: string }): Promise<void> {
  await saveUser(server.server.knex, { password: 'correct horse', role: user.fhirUser.startsWith('Patient/') ? 'patient' : 'practitioner', ...user });
}

/** The query of an /auth/authorize request; `overrides` with undefined values leave a parameter out. */
export function authorizeUrl(server: TestServer, overrides: Record<string, string | undefined> = {}): string {
  const params: Record<string, string | undefined> = {
    response_type: 'code',
    client_id: 'app',
    redirect_uri: REDIRECT_URI,
    scope: 'launch/patient patient/*.rs openid fhirUser',
    state: 'state-123',
    aud: server.base,
    code_challenge: pkcePair().challenge,
    code_challenge_method: 'S256',
    ...overrides,
  };
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined) query.set(name, value);
  return `${server.url}/auth/authorize?${query}`;
}

/** Authorize, then sign in with the password: the page after the login (a 303 to consent, or the TOTP page). */
export async function signIn(browser: CookieBrowser, server: TestServer, username: string, overrides: Record<string, string | undefined> = {}, password = 'correct horse'): Promise<Page> {
  const login = await browser.get(authorizeUrl(server, overrides));
  expect(login.status).toBe(200);
  return browser.post(`${server.url}/auth/login`, { ...hiddenFields(login.html), username, password });
}

/** Follows the 303 after login to the consent page (through the picker's redirect, if any). */
export async function consentPageAfter(browser: CookieBrowser, server: TestServer, afterLogin: Page): Promise<Page> {
  expect(afterLogin.status).toBe(303);
  return browser.get(`${server.url}${afterLogin.location}`);
}

/** Ticks nothing more and presses Allow (or Deny); returns the redirect to the app. */
export async function decide(browser: CookieBrowser, server: TestServer, consent: Page, decision: 'allow' | 'deny', boxes = checkedBoxes(consent.html)): Promise<URL> {
  const res = await browser.post(`${server.url}/auth/consent`, { ...hiddenFields(consent.html), ...boxes, decision });
  expect(res.status).toBe(303);
  return new URL(res.location as string);
}

export interface CodeRow {
  client_id: string;
  user_id: string;
  redirect_uri: string;
  scope: string;
  code_challenge: string | null;
  nonce: string | null;
  patient: string | null;
  encounter: string | null;
  need_patient_banner: boolean;
  expires_at: Date;
}

export async function codeRow(server: TestServer, code: string): Promise<CodeRow | undefined> {
  return server.server.knex('auth_code').where({ code_hash: hashToken(code) }).first();
}

/** Creates resources over the FHIR API with a system token. */
export async function createResource(server: TestServer, resource: Record<string, unknown>): Promise<string> {
  const token = await mintToken(server, { scope: 'system/*.*' });
  const res = await fetch(`${server.base}/${resource.resourceType as string}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/fhir+json' },
    body: JSON.stringify(resource),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}
