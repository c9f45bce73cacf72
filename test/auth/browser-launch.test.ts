import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { saveClient } from '../../server/auth/client-store';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';
import { createResource, registerUser } from './html-flow';

/**
 * SMART App Launch in a real browser: Debian's chromium runs a small SMART app (HTML +
 * fhirclient's browser build, served from another origin) through authorize, the login
 * page, the patient picker, consent, the token endpoint (PKCE S256) and a FHIR read with
 * the access token, under the pages' CSP and the server's CORS.
 */
const CHROMIUM = '/usr/bin/chromium';
const APP_DIR = path.join(__dirname, 'smart-app');
const FHIR_CLIENT_JS = require.resolve('fhirclient/build/fhir-client.js');

let server: TestServer;
let appServer: Server;
let appUrl: string;
let browser: Browser;
const ids: Record<string, string> = {};

/** The SMART app's origin: its two pages and fhirclient's browser bundle. */
function startAppServer(): Promise<Server> {
  const files: Record<string, string> = {
    '/launch.html': path.join(APP_DIR, 'launch.html'),
    '/index.html': path.join(APP_DIR, 'index.html'),
    '/fhir-client.js': FHIR_CLIENT_JS,
  };
  const app = createServer((req, res) => {
    const file = files[new URL(req.url ?? '/', 'http://x').pathname];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': file.endsWith('.js') ? 'text/javascript' : 'text/html; charset=utf-8' });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => app.listen(0, '127.0.0.1', () => resolve(app)));
}

beforeAll(async () => {
  // Fail loudly rather than skip: this test is the proof that a browser app works.
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run the browser test`);
  [server, appServer] = await Promise.all([startTestServer({ AUTH_REQUIRED: 'true' }), startAppServer()]);
  appUrl = `http://127.0.0.1:${(appServer.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });

  // Dr Welby works at the hospital that manages both patients (a practitioner sees only their hospital's patients).
  ids.hospital = await createResource(server, { resourceType: 'Organization', name: 'General Hospital' });
  const managed = { managingOrganization: { reference: `Organization/${ids.hospital}` } };
  ids.alice = await createResource(server, { resourceType: 'Patient', name: [{ given: ['Alice'], family: 'Alison' }], birthDate: '1970-01-02', ...managed });
  ids.bob = await createResource(server, { resourceType: 'Patient', name: [{ given: ['Bob'], family: 'Roberts' }], birthDate: '1965-05-06', ...managed });
  ids.practitioner = await createResource(server, { resourceType: 'Practitioner', name: [{ family: 'Welby' }] });
  await createResource(server, {
    resourceType: 'PractitionerRole',
    practitioner: { reference: `Practitioner/${ids.practitioner}` },
    organization: { reference: `Organization/${ids.hospital}` },
  });
  await saveClient(server.server.knex, {
    id: 'smart-app',
    public: true,
    redirectUris: [`${appUrl}/index.html`],
    scope: 'launch launch/patient patient/*.rs openid fhirUser offline_access',
  });
  await registerUser(server, { username: 'alice', password: 'alice-password', fhirUser: `Patient/${ids.alice}` });
  await registerUser(server, { username: 'welby', password: 'welby-password', fhirUser: `Practitioner/${ids.practitioner}` });
}, 60000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => (appServer ? appServer.close(resolve) : resolve(undefined)));
  await server?.stop();
});

/** A fresh browser context (no cookies, no sessionStorage) whose page errors fail the test with their text. */
async function newPage(): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  return { page, problems };
}

async function signIn(page: Page, username: string, password: string, launch?: string): Promise<void> {
  const query = new URLSearchParams({ iss: server.base, ...(launch ? { launch } : {}) });
  await page.goto(`${appUrl}/launch.html?${query}`);
  await page.waitForURL(`${server.url}/auth/authorize?**`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function appShows(page: Page, problems: string[]): Promise<{ patient: string; patientId: string; user: string }> {
  try {
    await page.waitForURL(`${appUrl}/index.html**`);
  } catch (err) {
    throw new Error(`The browser did not return to the app (at ${page.url()})\n${problems.join('\n')}`, { cause: err });
  }
  try {
    await page.locator('#status', { hasText: /^(Ready|Error)/ }).waitFor();
  } catch (err) {
    throw new Error(`The app did not finish: ${await page.locator('#status').textContent()}\n${problems.join('\n')}`, { cause: err });
  }
  const status = await page.locator('#status').textContent();
  if (status !== 'Ready') throw new Error(`The app says "${status}"\n${problems.join('\n')}`);
  return {
    patient: (await page.locator('#patient').textContent()) ?? '',
    patientId: (await page.locator('#patient-id').textContent()) ?? '',
    user: (await page.locator('#user').textContent()) ?? '',
  };
}

describe('a SMART app in Chromium', () => {
  it('is launched standalone by a patient, who signs in and allows, and reads their own Patient', async () => {
    const { page, problems } = await newPage();
    await signIn(page, 'alice', 'alice-password');
    await page.waitForURL(`${server.url}/auth/consent`);
    await page.getByRole('button', { name: /Allow/ }).click();
    const shown = await appShows(page, problems);
    expect(shown).toEqual({ patient: 'Alice Alison', patientId: ids.alice, user: `Patient/${ids.alice}` });
    await page.context().close();
  });

  it('is launched standalone by a practitioner, who picks a patient in the picker, and reads that Patient', async () => {
    const { page, problems } = await newPage();
    await signIn(page, 'welby', 'welby-password');
    await page.waitForURL(`${server.url}/auth/patient-picker`);
    await page.getByRole('button', { name: /Bob Roberts/ }).click();
    await page.waitForURL(`${server.url}/auth/consent`);
    await page.getByRole('button', { name: /Allow/ }).click();
    const shown = await appShows(page, problems);
    expect(shown).toEqual({ patient: 'Bob Roberts', patientId: ids.bob, user: `Practitioner/${ids.practitioner}` });
    await page.context().close();
  });

  it('is launched by an EHR with a patient in context: the practitioner signs in and allows, no picker, and the app reads that Patient', async () => {
    const ehr = await mintToken(server, { clientId: 'ehr', scope: 'system/Patient.rs' });
    const res = await fetch(`${server.url}/auth/launch`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ehr}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ patient: ids.alice }),
    });
    expect(res.status).toBe(201);
    const { launch } = (await res.json()) as { launch: string };
    const { page, problems } = await newPage();
    await signIn(page, 'welby', 'welby-password', launch);
    await page.waitForURL(`${server.url}/auth/consent`);
    await page.getByRole('button', { name: /Allow/ }).click();
    const shown = await appShows(page, problems);
    expect(shown).toEqual({ patient: 'Alice Alison', patientId: ids.alice, user: `Practitioner/${ids.practitioner}` });
    await page.context().close();
  });
});
