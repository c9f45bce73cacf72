import { startTestServer, type TestServer } from '../support/test-server';
import { authorizeUrl, CookieBrowser, hiddenFields, registerApp, registerUser, signIn } from './html-flow';

/**
 * The password step: argon2-checked, one message for every refusal, a lock after
 * LOGIN_MAX_FAILURES failures in a row that doubles with each failure while locked,
 * and CSRF protection binding each form to the browser that started the request.
 */
let server: TestServer;
const REFUSED = 'The username or password is not correct';

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true', LOGIN_MAX_FAILURES: '3', LOGIN_LOCK_SECONDS: '60' });
  await registerApp(server, { id: 'app' });
  await registerUser(server, { username: 'alice', fhirUser: 'Patient/alice' });
  await registerUser(server, { username: 'mallory-target', fhirUser: 'Patient/m' });
  await registerUser(server, { username: 'bob', fhirUser: 'Patient/bob' });
}, 60000);

afterAll(async () => {
  await server?.stop();
});

const account = (username: string) => server.server.knex('auth_user').where({ username }).first();

describe('POST /auth/login', () => {
  it('signs in with the right password and goes on to consent', async () => {
    const res = await signIn(new CookieBrowser(), server, 'alice');
    expect(res.status).toBe(303);
    expect(res.location).toBe('/auth/consent');
  });

  it('refuses a wrong password with the login page again and no redirect', async () => {
    const res = await signIn(new CookieBrowser(), server, 'alice', {}, 'wrong');
    expect(res.status).toBe(200);
    expect(res.location).toBeUndefined();
    expect(res.html).toContain(REFUSED);
    expect(res.html).toContain('value="alice"');
    expect((await account('alice')).failed_logins).toBe(1);
  });

  it('answers an unknown username exactly like a wrong password', async () => {
    const unknown = await signIn(new CookieBrowser(), server, 'nobody-at-all', {}, 'wrong');
    const wrong = await signIn(new CookieBrowser(), server, 'bob', {}, 'wrong');
    const text = (html: string) => html.replace(/value="[^"]*"/g, '');
    expect(unknown.status).toBe(wrong.status);
    expect(text(unknown.html)).toBe(text(wrong.html));
  });

  it('resets the failure count on a successful login', async () => {
    await signIn(new CookieBrowser(), server, 'bob', {}, 'wrong');
    expect((await account('bob')).failed_logins).toBeGreaterThan(0);
    expect((await signIn(new CookieBrowser(), server, 'bob')).status).toBe(303);
    expect((await account('bob')).failed_logins).toBe(0);
  });

  it('locks the account after 3 failures, refuses the right password then, and doubles the lock on each further failure', async () => {
    for (let i = 0; i < 3; i++) await signIn(new CookieBrowser(), server, 'mallory-target', {}, `guess-${i}`);
    const locked = await account('mallory-target');
    const firstLock = (locked.locked_until as Date).getTime() - Date.now();
    expect(firstLock).toBeGreaterThan(55_000);
    expect(firstLock).toBeLessThanOrEqual(60_000);

    const right = await signIn(new CookieBrowser(), server, 'mallory-target');
    expect(right.status).toBe(200);
    expect(right.location).toBeUndefined();
    expect(right.html).toContain(REFUSED);

    await signIn(new CookieBrowser(), server, 'mallory-target', {}, 'guess-4');
    const secondLock = ((await account('mallory-target')).locked_until as Date).getTime() - Date.now();
    expect(secondLock).toBeGreaterThan(115_000);
    expect(secondLock).toBeLessThanOrEqual(120_000);
  });
});

describe('CSRF', () => {
  it('refuses a login form whose CSRF token does not match with 403', async () => {
    const browser = new CookieBrowser();
    const login = await browser.get(authorizeUrl(server));
    const fields = hiddenFields(login.html);
    const res = await browser.post(`${server.url}/auth/login`, { ...fields, csrf_token: 'x'.repeat(43), username: 'alice', password: 'correct horse' });
    expect(res.status).toBe(403);
    expect(res.location).toBeUndefined();
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it('refuses a login form posted without the browser cookie of its request with 403', async () => {
    const login = await new CookieBrowser().get(authorizeUrl(server));
    const res = await new CookieBrowser().post(`${server.url}/auth/login`, { ...hiddenFields(login.html), username: 'alice', password: 'correct horse' });
    expect(res.status).toBe(403);
  });

  it("refuses another request's form posted with this browser's cookie with 403", async () => {
    const victim = new CookieBrowser();
    await victim.get(authorizeUrl(server));
    const attacker = await new CookieBrowser().get(authorizeUrl(server));
    const res = await victim.post(`${server.url}/auth/login`, { ...hiddenFields(attacker.html), username: 'alice', password: 'correct horse' });
    expect(res.status).toBe(403);
  });
});
