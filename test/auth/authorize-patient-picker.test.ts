import { startTestServer, type TestServer } from '../support/test-server';
import { authorizeUrl, codeRow, CookieBrowser, createResource, decide, hiddenFields, pickerButtons, registerApp, registerUser, signIn } from './html-flow';

/**
 * A practitioner's standalone launch with launch/patient: a picker with one button per
 * patient (name, birth date, id), a name filter and pages; the choice is the context.
 */
let server: TestServer;
const patients: Record<string, string> = {};

let outsider: string;

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  const practitioner = await createResource(server, { resourceType: 'Practitioner', name: [{ family: 'Welby' }] });
  // The picker offers the patients of the practitioner's hospital; the other hospital's patient never appears.
  const hospital = await createResource(server, { resourceType: 'Organization', name: 'General' });
  const elsewhere = await createResource(server, { resourceType: 'Organization', name: 'Elsewhere' });
  await createResource(server, { resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${practitioner}` }, organization: { reference: `Organization/${hospital}` } });
  const at = (org: string) => ({ managingOrganization: { reference: `Organization/${org}` } });
  patients.ann = await createResource(server, { resourceType: 'Patient', name: [{ given: ['Ann'], family: 'Archer' }], birthDate: '1980-03-04', ...at(hospital) });
  patients.script = await createResource(server, { resourceType: 'Patient', name: [{ given: ['<script>alert(1)</script>'], family: 'Zed' }], ...at(hospital) });
  for (let i = 0; i < 10; i++) patients[`filler${i}`] = await createResource(server, { resourceType: 'Patient', name: [{ given: [`Filler${i}`], family: 'Many' }], ...at(hospital) });
  outsider = await createResource(server, { resourceType: 'Patient', name: [{ given: ['Olga'], family: 'Outside' }], ...at(elsewhere) });
  await registerApp(server, { id: 'app' });
  await registerUser(server, { username: 'welby', fhirUser: `Practitioner/${practitioner}` });
}, 60000);

afterAll(async () => {
  await server?.stop();
});

async function pickerFor(username: string) {
  const browser = new CookieBrowser();
  const afterLogin = await signIn(browser, server, username);
  const consent = await browser.get(`${server.url}${afterLogin.location}`);
  expect(consent.status).toBe(303);
  expect(consent.location).toBe('/auth/patient-picker');
  const picker = await browser.get(`${server.url}/auth/patient-picker`);
  expect(picker.status).toBe(200);
  return { browser, picker };
}

describe('the patient picker', () => {
  it('shows a practitioner one button per patient with name, birth date and id, a page at a time', async () => {
    const { browser, picker } = await pickerFor('welby');
    const first = pickerButtons(picker.html);
    expect(first).toHaveLength(10);
    const next = /<a href="([^"]+)">Next page<\/a>/.exec(picker.html)?.[1] as string;
    expect(next).toBeDefined();
    const second = pickerButtons((await browser.get(`${server.url}${next.replace(/&amp;/g, '&')}`)).html);
    expect(second).toHaveLength(2);
    const ann = [...first, ...second].find((b) => b.id === patients.ann);
    expect(ann?.text).toMatch(new RegExp(`Ann Archer\\s+born 1980-03-04\\s+id ${patients.ann}`));
    expect(new Set([...first, ...second].map((b) => b.id))).toEqual(new Set(Object.values(patients)));
  });

  it('filters by name', async () => {
    const { browser } = await pickerFor('welby');
    const page = await browser.get(`${server.url}/auth/patient-picker?name=arch`);
    expect(pickerButtons(page.html).map((b) => b.id)).toEqual([patients.ann]);
    expect(page.html).toContain('value="arch"');
  });

  it('escapes what the records say', async () => {
    const { browser } = await pickerFor('welby');
    const page = await browser.get(`${server.url}/auth/patient-picker?name=zed`);
    expect(page.html).not.toContain('<script>');
    expect(page.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; Zed');
  });

  it('makes the chosen patient the context of the code, with a patient banner', async () => {
    const { browser, picker } = await pickerFor('welby');
    const chosen = await browser.post(`${server.url}/auth/patient-picker`, { ...hiddenFields(picker.html), patient: patients.ann });
    expect(chosen.status).toBe(303);
    expect(chosen.location).toBe('/auth/consent');
    const consent = await browser.get(`${server.url}/auth/consent`);
    expect(consent.html).toContain('Ann Archer (born 1980-03-04)');
    expect(consent.html).toContain("Read and search Ann Archer&#39;s health records of every kind");
    const back = await decide(browser, server, consent, 'allow');
    const row = await codeRow(server, back.searchParams.get('code') as string);
    expect(row).toMatchObject({ patient: patients.ann, scope: 'launch/patient patient/*.rs openid fhirUser', need_patient_banner: true });
  });

  it('offers only the patients of the practitioner\'s hospital, and refuses another one sent anyway', async () => {
    const { browser, picker } = await pickerFor('welby');
    const outside = await browser.get(`${server.url}/auth/patient-picker?name=outside`);
    expect(pickerButtons(outside.html)).toEqual([]);
    expect(outside.html).not.toContain(outsider);
    const res = await browser.post(`${server.url}/auth/patient-picker`, { ...hiddenFields(picker.html), patient: outsider });
    expect(res.status).toBe(200);
    expect((await browser.get(`${server.url}/auth/consent`)).location).toBe('/auth/patient-picker');
  });

  it('refuses a patient that does not exist and keeps asking', async () => {
    const { browser, picker } = await pickerFor('welby');
    const res = await browser.post(`${server.url}/auth/patient-picker`, { ...hiddenFields(picker.html), patient: 'no-such-patient' });
    expect(res.status).toBe(200);
    expect(res.html).toContain('does not exist');
    expect((await browser.get(`${server.url}/auth/consent`)).location).toBe('/auth/patient-picker');
  });

  it('is not shown before the user signed in', async () => {
    const browser = new CookieBrowser();
    expect((await browser.get(`${server.url}/auth/patient-picker`)).status).toBe(400);
    await browser.get(authorizeUrl(server));
    expect((await browser.get(`${server.url}/auth/patient-picker`)).status).toBe(403);
  });
});
