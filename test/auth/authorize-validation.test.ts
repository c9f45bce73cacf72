import { startTestServer, type TestServer } from '../support/test-server';
import { authorizeUrl, CookieBrowser, hiddenFields, REDIRECT_URI, registerApp } from './html-flow';

/**
 * /auth/authorize checks the client and its redirect_uri before anything else and never
 * redirects when those fail (RFC 6749 §4.1.2.1); every later error goes back to the app
 * with its state.
 */
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  await registerApp(server, { id: 'app' });
  await registerApp(server, { id: 'confidential', public: false, secret: 's3cret-s3cret', scope: 'launch/patient patient/*.rs openid fhirUser' });
  await registerApp(server, { id: 'system-only', public: false, secret: 's3cret-s3cret', scope: 'system/*.rs' });
}, 60000);

afterAll(async () => {
  await server?.stop();
});

async function errorRedirect(overrides: Record<string, string | undefined>): Promise<URLSearchParams> {
  const res = await new CookieBrowser().get(authorizeUrl(server, overrides));
  expect(res.status).toBe(302);
  const location = new URL(res.location as string);
  expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
  return location.searchParams;
}

describe('GET /auth/authorize', () => {
  it('shows an error page and does not redirect for an unknown client', async () => {
    const res = await new CookieBrowser().get(authorizeUrl(server, { client_id: 'nobody' }));
    expect(res.status).toBe(400);
    expect(res.location).toBeUndefined();
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.html).toContain('not registered');
  });

  it('shows an error page and does not redirect for a redirect_uri that is not exactly registered', async () => {
    for (const redirect of [`${REDIRECT_URI}/other`, `${REDIRECT_URI}?x=1`, 'https://evil.example/callback', undefined]) {
      const res = await new CookieBrowser().get(authorizeUrl(server, { redirect_uri: redirect }));
      expect(res.status).toBe(400);
      expect(res.location).toBeUndefined();
    }
  });

  it('redirects invalid_request with the state when a public client sends no PKCE challenge', async () => {
    const params = await errorRedirect({ code_challenge: undefined, code_challenge_method: undefined });
    expect(params.get('error')).toBe('invalid_request');
    expect(params.get('state')).toBe('state-123');
    expect(params.get('code')).toBeNull();
  });

  it('refuses the plain PKCE method and a challenge without a method', async () => {
    expect((await errorRedirect({ code_challenge_method: 'plain' })).get('error')).toBe('invalid_request');
    expect((await errorRedirect({ code_challenge_method: undefined })).get('error')).toBe('invalid_request');
  });

  it('lets a confidential client go without PKCE', async () => {
    const res = await new CookieBrowser().get(authorizeUrl(server, { client_id: 'confidential', code_challenge: undefined, code_challenge_method: undefined }));
    expect(res.status).toBe(200);
    expect(res.html).toContain('name="password"');
  });

  it('redirects invalid_request when aud is missing or is not this FHIR base', async () => {
    expect((await errorRedirect({ aud: undefined })).get('error')).toBe('invalid_request');
    expect((await errorRedirect({ aud: 'https://other.example/fhir' })).get('error')).toBe('invalid_request');
  });

  it('accepts as aud the FHIR base under the host the browser reached (localhost for a PUBLIC_URL of 127.0.0.1), and no other host', async () => {
    const port = new URL(server.url).port;
    const viaLocalhost = { 'X-Forwarded-Host': `localhost:${port}` };
    const accepted = await new CookieBrowser().fetch(authorizeUrl(server, { aud: `http://localhost:${port}/fhir` }), { headers: viaLocalhost });
    expect(accepted.location ?? '').toBe('');
    expect(accepted.status).toBe(200);
    expect(accepted.html).toContain('name="password"');
    const refused = await new CookieBrowser().fetch(authorizeUrl(server, { aud: `http://localhost:${port}/fhir` }));
    expect(refused.status).toBe(302);
    expect(new URL(refused.location as string).searchParams.get('error')).toBe('invalid_request');
    // The Origin header (a cross-site form post sets it) names the sender, never this server.
    const forged = await new CookieBrowser().fetch(authorizeUrl(server, { aud: 'https://evil.example/fhir' }), { headers: { Origin: 'https://evil.example' } });
    expect(new URL(forged.location as string).searchParams.get('error')).toBe('invalid_request');
  });

  it('redirects unsupported_response_type for anything but code, and invalid_request without state', async () => {
    expect((await errorRedirect({ response_type: 'token' })).get('error')).toBe('unsupported_response_type');
    const noState = await errorRedirect({ state: undefined });
    expect(noState.get('error')).toBe('invalid_request');
    expect(noState.has('state')).toBe(false);
  });

  it('redirects invalid_scope when none of the requested scopes may be granted', async () => {
    expect((await errorRedirect({ scope: 'system/*.rs' })).get('error')).toBe('invalid_scope');
    expect((await errorRedirect({ scope: undefined })).get('error')).toBe('invalid_scope');
  });

  it('redirects invalid_request for a launch that was never created', async () => {
    expect((await errorRedirect({ launch: 'no-such-launch' })).get('error')).toBe('invalid_request');
  });

  it('answers a valid request with the login page, a request cookie and a CSRF token', async () => {
    const browser = new CookieBrowser();
    const res = await browser.get(authorizeUrl(server));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    // Browsers check form-action on the redirects of a form submission: the consent form's 303 goes to the app.
    expect(res.headers.get('content-security-policy')).toContain("form-action 'self' http://127.0.0.1:9;");
    expect(res.html).toMatch(/<label for="username">/);
    expect(res.html).toMatch(/<input type="text" id="username" name="username"/);
    expect(res.html).toMatch(/<label for="password">/);
    expect(res.html).toMatch(/<input type="password" id="password" name="password"/);
    expect(res.html).toMatch(/<button type="submit">Sign in<\/button>/);
    expect(res.html).not.toContain('name="totp"');
    const fields = hiddenFields(res.html);
    expect(browser.cookies.get('smart_authorization')).toBe(fields.request);
    expect(fields.csrf_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('POST /auth/authorize', () => {
  it('takes the same parameters as a form', async () => {
    const browser = new CookieBrowser();
    const query = new URL(authorizeUrl(server)).searchParams;
    const res = await browser.post(`${server.url}/auth/authorize`, Object.fromEntries(query));
    expect(res.status).toBe(200);
    expect(res.html).toContain('name="password"');
  });

  it('redirects its errors with 303', async () => {
    const query = new URL(authorizeUrl(server, { aud: 'https://other.example/fhir' })).searchParams;
    const res = await new CookieBrowser().post(`${server.url}/auth/authorize`, Object.fromEntries(query));
    expect(res.status).toBe(303);
    expect(new URL(res.location as string).searchParams.get('error')).toBe('invalid_request');
  });
});
