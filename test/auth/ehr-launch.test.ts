import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';
import { codeRow, consentPageAfter, CookieBrowser, createResource, decide, registerApp, registerUser, signIn } from './html-flow';

/**
 * EHR launch: the EHR (a system token that may read Patient and Encounter) creates a
 * launch context with POST /auth/launch; the app's authorize request with launch=…
 * carries its patient and encounter into the code, whoever signs in.
 */
let server: TestServer;
let ehrToken: string;
const ids: Record<string, string> = {};

async function postLaunch(body: unknown, token: string | null = ehrToken): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${server.url}/auth/launch`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  ehrToken = await mintToken(server, { clientId: 'ehr', scope: 'system/Patient.rs system/Encounter.rs' });
  ids.practitioner = await createResource(server, { resourceType: 'Practitioner', name: [{ family: 'Welby' }] });
  ids.patient = await createResource(server, { resourceType: 'Patient', name: [{ given: ['Eve'], family: 'Evans' }] });
  ids.other = await createResource(server, { resourceType: 'Patient', name: [{ given: ['Olga'], family: 'Other' }] });
  ids.encounter = await createResource(server, { resourceType: 'Encounter', status: 'in-progress', class: { code: 'AMB' }, subject: { reference: `Patient/${ids.patient}` } });
  await registerApp(server, { id: 'app' });
  await registerUser(server, { username: 'welby', fhirUser: `Practitioner/${ids.practitioner}` });
  await registerUser(server, { username: 'olga', fhirUser: `Patient/${ids.other}` });
}, 60000);

afterAll(async () => {
  await server?.stop();
});

describe('POST /auth/launch', () => {
  it('creates a launch context for an existing patient and encounter', async () => {
    const res = await postLaunch({ patient: ids.patient, encounter: ids.encounter });
    expect(res.status).toBe(201);
    expect(res.body.launch).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(res.body.expires_in).toBe(600);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const row = await server.server.knex('auth_launch').where({ id: res.body.launch }).first();
    expect(row).toMatchObject({ patient: ids.patient, encounter: ids.encounter, created_by: 'ehr', need_patient_banner: true });
  });

  it('needs a bearer token', async () => {
    const res = await postLaunch({ patient: ids.patient }, null);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
  });

  it("refuses a user's token and a system token that may not read Patient, or Encounter when one is named", async () => {
    const user = await mintToken(server, { scope: 'user/*.rs launch', userId: 'u1', fhirUser: `Practitioner/${ids.practitioner}` });
    expect((await postLaunch({ patient: ids.patient }, user)).status).toBe(403);
    const observations = await mintToken(server, { scope: 'system/Observation.rs' });
    expect((await postLaunch({ patient: ids.patient }, observations)).body.error).toBe('insufficient_scope');
    const patientsOnly = await mintToken(server, { scope: 'system/Patient.r' });
    expect((await postLaunch({ patient: ids.patient }, patientsOnly)).status).toBe(201);
    expect((await postLaunch({ patient: ids.patient, encounter: ids.encounter }, patientsOnly)).status).toBe(403);
  });

  it('refuses a patient or encounter that does not exist, and an encounter of another patient', async () => {
    expect((await postLaunch({ patient: 'nobody' })).status).toBe(400);
    expect((await postLaunch({ patient: ids.patient, encounter: 'nothing' })).status).toBe(400);
    const mismatch = await postLaunch({ patient: ids.other, encounter: ids.encounter });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.error).toBe('invalid_request');
    expect((await postLaunch({})).status).toBe(400);
    expect((await postLaunch({ patient: ids.patient, need_patient_banner: 'no' })).status).toBe(400);
  });
});

describe('authorize with launch=…', () => {
  it("puts the EHR's patient and encounter into the code, without a picker", async () => {
    const { body } = await postLaunch({ patient: ids.patient, encounter: ids.encounter, need_patient_banner: false });
    const browser = new CookieBrowser();
    const afterLogin = await signIn(browser, server, 'welby', { launch: body.launch as string, scope: 'launch openid fhirUser patient/*.rs launch/encounter' });
    const consent = await consentPageAfter(browser, server, afterLogin);
    expect(consent.status).toBe(200);
    expect(consent.html).toContain('Eve Evans');
    const back = await decide(browser, server, consent, 'allow');
    const row = await codeRow(server, back.searchParams.get('code') as string);
    expect(row).toMatchObject({ patient: ids.patient, encounter: ids.encounter, need_patient_banner: false, scope: 'launch openid fhirUser patient/*.rs launch/encounter' });
  });

  it('refuses a launch for another patient than the signed-in Patient user with access_denied', async () => {
    const { body } = await postLaunch({ patient: ids.patient });
    const browser = new CookieBrowser();
    const afterLogin = await signIn(browser, server, 'olga', { launch: body.launch as string, scope: 'launch patient/*.rs' });
    const res = await browser.get(`${server.url}${afterLogin.location}`);
    expect(res.status).toBe(303);
    expect(new URL(res.location as string).searchParams.get('error')).toBe('access_denied');
  });

  it('refuses an expired launch with invalid_request', async () => {
    const { body } = await postLaunch({ patient: ids.patient });
    await server.server.knex('auth_launch').where({ id: body.launch }).update({ expires_at: new Date(Date.now() - 1000) });
    const res = await new CookieBrowser().get(`${server.url}/auth/authorize?${new URLSearchParams({
      response_type: 'code', client_id: 'app', redirect_uri: 'http://127.0.0.1:9/callback', scope: 'launch patient/*.rs', state: 's', aud: server.base,
      code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', launch: body.launch as string,
    })}`);
    expect(res.status).toBe(302);
    expect(new URL(res.location as string).searchParams.get('error')).toBe('invalid_request');
  });
});
