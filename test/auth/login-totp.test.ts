import { totpCode, newTotpEnrollment, verifyTotp } from '../../server/auth/totp';
import { startTestServer, type TestServer } from '../support/test-server';
import { CookieBrowser, hiddenFields, registerApp, registerUser, signIn } from './html-flow';

/** A user with a TOTP secret passes a second step after the password; others never see it. */
let server: TestServer;
const enrollment = newTotpEnrollment('carol');

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true', LOGIN_MAX_FAILURES: '3' });
  await registerApp(server, { id: 'app' });
  await registerUser(server, { username: 'carol', fhirUser: 'Patient/carol', totpSecret: enrollment.secret });
  await registerUser(server, { username: 'dave', fhirUser: 'Patient/dave', totpSecret: newTotpEnrollment('dave').secret });
}, 60000);

afterAll(async () => {
  await server?.stop();
});

describe('TOTP enrolment', () => {
  it('makes a base32 secret and an otpauth:// URI for an authenticator app', () => {
    expect(enrollment.secret).toMatch(/^[A-Z2-7]{32}$/);
    const uri = new URL(enrollment.uri);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.searchParams.get('secret')).toBe(enrollment.secret);
    expect(uri.searchParams.get('algorithm')).toBe('SHA1');
    expect(uri.searchParams.get('digits')).toBe('6');
    expect(uri.searchParams.get('period')).toBe('30');
  });

  it('accepts the code of the step before and after, not two steps away', () => {
    const now = Date.now();
    expect(verifyTotp(enrollment.secret, totpCode(enrollment.secret, now - 30_000), now)).toBe(true);
    expect(verifyTotp(enrollment.secret, totpCode(enrollment.secret, now + 30_000), now)).toBe(true);
    expect(verifyTotp(enrollment.secret, totpCode(enrollment.secret, now - 90_000), now)).toBe(false);
    expect(verifyTotp(enrollment.secret, 'abcdef', now)).toBe(false);
  });
});

describe('the TOTP step', () => {
  it('asks for the code after the right password, refuses a wrong code and accepts the right one', async () => {
    const browser = new CookieBrowser();
    const totpPage = await signIn(browser, server, 'carol');
    expect(totpPage.status).toBe(200);
    expect(totpPage.html).toMatch(/<label for="totp">/);
    expect(totpPage.html).toMatch(/<input type="text" id="totp" name="totp"/);

    const right = totpCode(enrollment.secret);
    const wrong = right === '000000' ? '111111' : '000000';
    const refused = await browser.post(`${server.url}/auth/login/totp`, { ...hiddenFields(totpPage.html), totp: wrong });
    expect(refused.status).toBe(200);
    expect(refused.location).toBeUndefined();
    expect(refused.html).toContain('The code is not correct');

    const accepted = await browser.post(`${server.url}/auth/login/totp`, { ...hiddenFields(refused.html), totp: right });
    expect(accepted.status).toBe(303);
    expect(accepted.location).toBe('/auth/consent');
  });

  it('does not let a pending request past consent on the password alone', async () => {
    const browser = new CookieBrowser();
    await signIn(browser, server, 'carol');
    const consent = await browser.get(`${server.url}/auth/consent`);
    expect(consent.status).toBe(403);
  });

  it('counts wrong codes as login failures and locks the account', async () => {
    const browser = new CookieBrowser();
    const page = await signIn(browser, server, 'dave');
    for (let i = 0; i < 3; i++) await browser.post(`${server.url}/auth/login/totp`, { ...hiddenFields(page.html), totp: '000000' });
    const row = await server.server.knex('auth_user').where({ username: 'dave' }).first();
    expect(row.failed_logins).toBe(3);
    expect((row.locked_until as Date).getTime()).toBeGreaterThan(Date.now());
  });

  it('is refused when no password was accepted on that request', async () => {
    const browser = new CookieBrowser();
    const login = await signIn(browser, server, 'carol', {}, 'wrong password');
    const res = await browser.post(`${server.url}/auth/login/totp`, { ...hiddenFields(login.html), totp: totpCode(enrollment.secret) });
    expect(res.status).toBe(200);
    expect(res.html).toContain('name="password"');
    expect(res.location).toBeUndefined();
  });
});
