import { startTestServer, type TestServer } from '../support/test-server';
import { codeRow, CookieBrowser, createResource, decide, hiddenFields, registerApp, registerUser, signIn } from './html-flow';

/**
 * A standalone launch asking for launch/encounter (SMART App Launch 2,
 * context-standalone-encounter): after the patient, the user chooses one of that
 * patient's encounters (latest first, only those within their reach) or none; the choice
 * is the code's encounter context.
 */
let server: TestServer;
const ids: Record<string, string> = {};

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  const hospital = await createResource(server, { resourceType: 'Organization', name: 'General' });
  const practitioner = await createResource(server, { resourceType: 'Practitioner', name: [{ family: 'Welby' }] });
  await createResource(server, { resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${practitioner}` }, organization: { reference: `Organization/${hospital}` } });
  ids.ann = await createResource(server, { resourceType: 'Patient', name: [{ given: ['Ann'], family: 'Archer' }], birthDate: '1980-03-04', managingOrganization: { reference: `Organization/${hospital}` } });
  ids.bob = await createResource(server, { resourceType: 'Patient', name: [{ given: ['Bob'], family: 'Baker' }], managingOrganization: { reference: `Organization/${hospital}` } });
  const encounter = (patient: string, start: string, text: string, org = hospital): Record<string, unknown> => ({
    resourceType: 'Encounter',
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' },
    type: [{ text }],
    subject: { reference: `Patient/${patient}` },
    serviceProvider: { reference: `Organization/${org}` },
    period: { start, end: start },
  });
  ids.checkup = await createResource(server, encounter(ids.ann, '2019-03-04T09:00:00Z', 'Check up'));
  ids.fracture = await createResource(server, encounter(ids.ann, '2021-06-01T10:00:00Z', 'Fracture <b>care</b>'));
  ids.bobVisit = await createResource(server, encounter(ids.bob, '2020-01-01T10:00:00Z', 'Bob visit'));
  await registerApp(server, { id: 'app' });
  await registerUser(server, { username: 'welby', fhirUser: `Practitioner/${practitioner}` });
  await registerUser(server, { username: 'ann', fhirUser: `Patient/${ids.ann}` });
}, 60000);

afterAll(async () => {
  await server?.stop();
});

const SCOPE = 'launch/patient launch/encounter patient/*.rs openid fhirUser';

function encounterButtons(html: string): { id: string; text: string }[] {
  return [...html.matchAll(/<button type="submit" name="encounter" value="([^"]+)">([\s\S]*?)<\/button>/g)].map((m) => ({ id: m[1], text: m[2].replace(/<[^>]*>/g, '') }));
}

/** A practitioner signs in, picks Ann, and lands on the encounter picker. */
async function encounterPickerAsWelby() {
  const browser = new CookieBrowser();
  const afterLogin = await signIn(browser, server, 'welby', { scope: SCOPE });
  expect((await browser.get(`${server.url}${afterLogin.location}`)).location).toBe('/auth/patient-picker');
  const patientPicker = await browser.get(`${server.url}/auth/patient-picker`);
  const chosen = await browser.post(`${server.url}/auth/patient-picker`, { ...hiddenFields(patientPicker.html), patient: ids.ann });
  expect(chosen.location).toBe('/auth/consent');
  const consent = await browser.get(`${server.url}/auth/consent`);
  expect(consent.status).toBe(303);
  expect(consent.location).toBe('/auth/encounter-picker');
  const picker = await browser.get(`${server.url}/auth/encounter-picker`);
  expect(picker.status).toBe(200);
  return { browser, picker };
}

describe('the encounter picker', () => {
  it("lists the chosen patient's encounters, latest first, escaped, and no other patient's", async () => {
    const { picker } = await encounterPickerAsWelby();
    const buttons = encounterButtons(picker.html);
    expect(buttons.map((b) => b.id)).toEqual([ids.fracture, ids.checkup]);
    expect(buttons[1].text).toMatch(new RegExp(`Check up \\(ambulatory\\)\\s+2019-03-04\\s+finished\\s+id ${ids.checkup}`));
    expect(picker.html).not.toContain('<b>care</b>');
    expect(picker.html).toContain('Ann Archer (born 1980-03-04)');
    expect(picker.html).not.toContain(ids.bobVisit);
  });

  it('makes the chosen encounter the context of the code, beside the patient', async () => {
    const { browser, picker } = await encounterPickerAsWelby();
    const chosen = await browser.post(`${server.url}/auth/encounter-picker`, { ...hiddenFields(picker.html), encounter: ids.checkup });
    expect(chosen.location).toBe('/auth/consent');
    const consent = await browser.get(`${server.url}/auth/consent`);
    expect(consent.status).toBe(200);
    const back = await decide(browser, server, consent, 'allow');
    expect(await codeRow(server, back.searchParams.get('code') as string)).toMatchObject({ patient: ids.ann, encounter: ids.checkup, scope: SCOPE });
  });

  it('goes on without an encounter: launch/encounter is then not granted', async () => {
    const { browser, picker } = await encounterPickerAsWelby();
    await browser.post(`${server.url}/auth/encounter-picker`, { ...hiddenFields(picker.html), encounter: '' });
    const consent = await browser.get(`${server.url}/auth/consent`);
    expect(consent.status).toBe(200);
    const back = await decide(browser, server, consent, 'allow');
    const row = await codeRow(server, back.searchParams.get('code') as string);
    expect(row).toMatchObject({ patient: ids.ann, encounter: null });
    expect(row?.scope.split(' ')).not.toContain('launch/encounter');
  });

  it("refuses another patient's encounter or an unknown one, and keeps asking", async () => {
    const { browser, picker } = await encounterPickerAsWelby();
    // A list of ids (an OR in a search) is no id, even with the patient's own encounter in it.
    for (const wrong of [ids.bobVisit, 'no-such-encounter', `${ids.checkup},${ids.bobVisit}`]) {
      const res = await browser.post(`${server.url}/auth/encounter-picker`, { ...hiddenFields(picker.html), encounter: wrong });
      expect(res.status).toBe(200);
      expect(res.html).toContain('not one of this patient');
      expect((await browser.get(`${server.url}/auth/consent`)).location).toBe('/auth/encounter-picker');
    }
  });

  it('asks a Patient user for one of their own encounters, without a patient picker', async () => {
    const browser = new CookieBrowser();
    const afterLogin = await signIn(browser, server, 'ann', { scope: SCOPE });
    expect((await browser.get(`${server.url}${afterLogin.location}`)).location).toBe('/auth/encounter-picker');
    const picker = await browser.get(`${server.url}/auth/encounter-picker`);
    expect(encounterButtons(picker.html).map((b) => b.id)).toEqual([ids.fracture, ids.checkup]);
    await browser.post(`${server.url}/auth/encounter-picker`, { ...hiddenFields(picker.html), encounter: ids.fracture });
    const back = await decide(browser, server, await browser.get(`${server.url}/auth/consent`), 'allow');
    expect(await codeRow(server, back.searchParams.get('code') as string)).toMatchObject({ patient: ids.ann, encounter: ids.fracture });
  });

  it('is not shown when the launch does not ask for an encounter', async () => {
    const browser = new CookieBrowser();
    const afterLogin = await signIn(browser, server, 'ann', { scope: 'launch/patient patient/*.rs openid fhirUser' });
    const consent = await browser.get(`${server.url}${afterLogin.location}`);
    expect(consent.status).toBe(200);
    expect((await browser.get(`${server.url}/auth/encounter-picker`)).location).toBe('/auth/consent');
  });
});
