import { startTestServer, type TestServer } from '../support/test-server';
import {
  authorizeUrl,
  checkedBoxes,
  codeRow,
  consentPageAfter,
  CookieBrowser,
  createResource,
  decide,
  hiddenFields,
  pkcePair,
  REDIRECT_URI,
  registerApp,
  registerUser,
  signIn,
} from './html-flow';

/**
 * The consent page and the code it leads to: access in plain words, each scope a ticked
 * checkbox the user may untick, Allow and Deny; a Patient user's launch context is
 * themself.
 */
let server: TestServer;
let alice: string;
let practitioner: string;

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  alice = await createResource(server, { resourceType: 'Patient', name: [{ given: ['Alice'], family: 'Alison' }], birthDate: '1970-01-02' });
  practitioner = await createResource(server, { resourceType: 'Practitioner', name: [{ family: 'Welby' }] });
  await registerApp(server, { id: 'app', name: 'Health <Viewer> & Co' });
  await registerApp(server, { id: 'wide', public: false, secret: 'wide-secret-wide', scope: 'launch/patient patient/*.rs system/*.rs user/*.rs openid fhirUser' });
  await registerUser(server, { username: 'alice', fhirUser: `Patient/${alice}` });
  await registerUser(server, { username: 'welby', fhirUser: `Practitioner/${practitioner}` });
}, 60000);

afterAll(async () => {
  await server?.stop();
});

async function consentFor(username: string, overrides: Record<string, string | undefined> = {}) {
  const browser = new CookieBrowser();
  const consent = await consentPageAfter(browser, server, await signIn(browser, server, username, overrides));
  return { browser, consent };
}

describe('the consent page', () => {
  it('lists the access in plain words with a ticked checkbox each, and Allow and Deny buttons', async () => {
    const { consent } = await consentFor('alice', { scope: 'launch/patient patient/Observation.rs patient/Condition.r openid fhirUser offline_access' });
    expect(consent.status).toBe(200);
    expect(consent.html).toContain('Health &lt;Viewer&gt; &amp; Co');
    expect(consent.html).toContain('Read and search your Observations');
    expect(consent.html).toContain('Read your Conditions');
    expect(consent.html).toContain('Read your basic profile (fhirUser)');
    expect(consent.html).toContain('Stay signed in (offline access)');
    expect(consent.html).toContain('Alice Alison (born 1970-01-02)');
    expect(consent.html).toMatch(/<button type="submit" name="decision" value="allow">Allow<\/button>/);
    expect(consent.html).toMatch(/<button[^>]*value="deny"[^>]*>Deny<\/button>/);
    expect(Object.values(checkedBoxes(consent.html))).toEqual(['patient/Observation.rs', 'patient/Condition.r', 'openid', 'fhirUser', 'offline_access']);
  });
});

describe('Allow', () => {
  it("gives a Patient user's code their own patient, the granted scope, PKCE challenge, nonce and a patient banner", async () => {
    const { challenge } = pkcePair();
    const { browser, consent } = await consentFor('alice', { code_challenge: challenge, nonce: 'n-0S6' });
    const back = await decide(browser, server, consent, 'allow');
    expect(`${back.origin}${back.pathname}`).toBe(REDIRECT_URI);
    expect(back.searchParams.get('state')).toBe('state-123');
    const code = back.searchParams.get('code') as string;
    expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const row = await codeRow(server, code);
    expect(row).toMatchObject({
      client_id: 'app',
      redirect_uri: REDIRECT_URI,
      scope: 'launch/patient patient/*.rs openid fhirUser',
      code_challenge: challenge,
      nonce: 'n-0S6',
      patient: alice,
      encounter: null,
      need_patient_banner: true,
    });
    const ttl = (row?.expires_at as Date).getTime() - Date.now();
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
    // The pending request is gone with its cookie.
    expect(browser.cookies.has('smart_authorization')).toBe(false);
  });

  it('leaves out of the code what the user unticked', async () => {
    const { browser, consent } = await consentFor('alice', { scope: 'launch/patient patient/Observation.rs patient/Condition.rs openid fhirUser' });
    const boxes = checkedBoxes(consent.html);
    const unticked = Object.entries(boxes).find(([, scope]) => scope === 'patient/Condition.rs')?.[0] as string;
    delete boxes[unticked];
    const back = await decide(browser, server, consent, 'allow', boxes);
    const row = await codeRow(server, back.searchParams.get('code') as string);
    expect(row?.scope).toBe('launch/patient patient/Observation.rs openid fhirUser');
  });

  it('does not grant a scope the page did not offer, even when the form names it', async () => {
    const { browser, consent } = await consentFor('alice', { scope: 'launch/patient patient/Observation.rs' });
    const back = await decide(browser, server, consent, 'allow', { ...checkedBoxes(consent.html), scope_7: 'patient/*.cruds', scope_5: 'user/*.rs' });
    expect((await codeRow(server, back.searchParams.get('code') as string))?.scope).toBe('launch/patient patient/Observation.rs');
  });

  it('asks again when every kind of access was unticked', async () => {
    const { browser, consent } = await consentFor('alice');
    const res = await browser.post(`${server.url}/auth/consent`, { ...hiddenFields(consent.html), decision: 'allow' });
    expect(res.status).toBe(200);
    expect(res.html).toContain('Tick at least one');
  });

  it('never grants system/ scopes, and no patient/ scopes without a patient in context', async () => {
    const { browser, consent } = await consentFor('welby', { client_id: 'wide', code_challenge: undefined, code_challenge_method: undefined, scope: 'patient/*.rs system/*.rs user/*.rs openid fhirUser' });
    expect(consent.status).toBe(200);
    const back = await decide(browser, server, consent, 'allow');
    const row = await codeRow(server, back.searchParams.get('code') as string);
    expect(row?.scope).toBe('user/*.rs openid fhirUser');
    expect(row?.patient).toBeNull();
  });

  it('issues one code when the form is posted twice', async () => {
    const { browser, consent } = await consentFor('alice');
    const form = { ...hiddenFields(consent.html), ...checkedBoxes(consent.html), decision: 'allow' };
    const cookie = browser.cookies.get('smart_authorization') as string;
    const first = await browser.post(`${server.url}/auth/consent`, form);
    expect(first.status).toBe(303);
    browser.cookies.set('smart_authorization', cookie);
    const second = await browser.post(`${server.url}/auth/consent`, form);
    expect(second.status).toBe(403);
  });

  it('yields a code that the token endpoint exchanges for tokens with the patient context', async () => {
    const { verifier, challenge } = pkcePair();
    const { browser, consent } = await consentFor('alice', { code_challenge: challenge });
    const back = await decide(browser, server, consent, 'allow');
    const res = await fetch(`${server.url}/auth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: back.searchParams.get('code') as string, redirect_uri: REDIRECT_URI, client_id: 'app', code_verifier: verifier }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ token_type: 'Bearer', patient: alice, scope: 'launch/patient patient/*.rs openid fhirUser', need_patient_banner: true });
    const read = await fetch(`${server.base}/Patient/${alice}`, { headers: { Authorization: `Bearer ${body.access_token as string}` } });
    expect(read.status).toBe(200);
  });
});

describe('Deny', () => {
  it('sends the app access_denied with its state and ends the request', async () => {
    const { browser, consent } = await consentFor('alice');
    const back = await decide(browser, server, consent, 'deny');
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.get('state')).toBe('state-123');
    expect(back.searchParams.has('code')).toBe(false);
    const again = await browser.get(`${server.url}/auth/consent`);
    expect(again.status).toBe(400);
  });
});
