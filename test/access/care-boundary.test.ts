import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * Hospital boundaries: Hospital A (with its cardiology department A1) and Hospital B.
 * Dr A works for A, Dr B for B. Patients: p1 managed by A, p2 by A1, p3 by B but with
 * an Encounter at A (e.g. after a transfer), p4 by B only. Every user token has
 * `user/*.cruds`: what is refused is refused by the boundary.
 */
let server: TestServer;
let admin: string;
const ids: Record<string, string> = {};

const call = (token: string, method: string, path: string, body?: unknown) =>
  fhirRequest(method, `${server.base}${path}`, { body, headers: { Authorization: `Bearer ${token}` } });
const create = async (resource: Record<string, unknown>): Promise<string> => {
  const res = await call(admin, 'POST', `/${resource.resourceType}`, resource);
  expect(res.status).toBe(201);
  return res.body.id;
};
const entryIds = (bundle: any): string[] => (bundle.entry ?? []).map((e: any) => e.resource.id).sort();
const user = (fhirUser: string, role: string) => mintToken(server, { scope: 'user/*.cruds', userId: `u-${fhirUser}`, fhirUser, role });
const observation = (patient: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'hr' }, subject: { reference: `Patient/${patient}` } });

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  admin = await mintToken(server, { scope: 'system/*.*' });
  ids.A = await create({ resourceType: 'Organization', name: 'Hospital A' });
  ids.A1 = await create({ resourceType: 'Organization', name: 'Cardiology A', partOf: { reference: `Organization/${ids.A}` } });
  ids.B = await create({ resourceType: 'Organization', name: 'Hospital B' });
  ids.insurer = await create({ resourceType: 'Organization', name: 'Insurer' });
  ids.otherInsurer = await create({ resourceType: 'Organization', name: 'Other insurer' });
  ids.drA = await create({ resourceType: 'Practitioner', name: [{ family: 'Alpha' }] });
  ids.drB = await create({ resourceType: 'Practitioner', name: [{ family: 'Beta' }] });
  ids.drNone = await create({ resourceType: 'Practitioner', name: [{ family: 'Nowhere' }] });
  ids.agent = await create({ resourceType: 'Practitioner', name: [{ family: 'Claims' }] });
  await create({ resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${ids.drA}` }, organization: { reference: `Organization/${ids.A}` } });
  await create({ resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${ids.drB}` }, organization: { reference: `Organization/${ids.B}` } });
  await create({ resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${ids.agent}` }, organization: { reference: `Organization/${ids.insurer}` } });
  const patient = (family: string, org: string) => create({ resourceType: 'Patient', name: [{ family }], managingOrganization: { reference: `Organization/${org}` } });
  ids.p1 = await patient('One', ids.A);
  ids.p2 = await patient('Two', ids.A1);
  ids.p3 = await patient('Three', ids.B);
  ids.p4 = await patient('Four', ids.B);
  await create({ resourceType: 'Encounter', status: 'in-progress', class: { code: 'IMP' }, subject: { reference: `Patient/${ids.p3}` }, serviceProvider: { reference: `Organization/${ids.A}` } });
  for (const p of ['p1', 'p2', 'p3', 'p4']) ids[`obs${p}`] = await create(observation(ids[p]));
  const claim = (insurer: string) => ({
    resourceType: 'Claim', status: 'active', use: 'claim', type: { text: 'x' }, created: '2026-01-01', priority: { text: 'normal' },
    patient: { reference: `Patient/${ids.p1}` }, provider: { reference: `Organization/${ids.A}` }, insurer: { reference: `Organization/${insurer}` },
    insurance: [{ sequence: 1, focal: true, coverage: { display: 'x' } }],
  });
  ids.claim = await create(claim(ids.insurer));
  ids.otherClaim = await create(claim(ids.otherInsurer));
}, 60000);

afterAll(async () => {
  await server?.stop();
});

describe('a practitioner', () => {
  it('reads the patients of their hospital, its departments and those with an Encounter there, and no other', async () => {
    const token = await user(`Practitioner/${ids.drA}`, 'practitioner');
    for (const p of ['p1', 'p2', 'p3']) expect((await call(token, 'GET', `/Patient/${ids[p]}`)).status).toBe(200);
    const other = await call(token, 'GET', `/Patient/${ids.p4}`);
    expect(other.status).toBe(403);
    expect(other.text).not.toContain('Four');
  });

  it('finds only those patients and their data by search', async () => {
    const token = await user(`Practitioner/${ids.drA}`, 'practitioner');
    expect(entryIds((await call(token, 'GET', '/Patient')).body)).toEqual([ids.p1, ids.p2, ids.p3].sort());
    expect(entryIds((await call(token, 'GET', '/Observation')).body)).toEqual([ids.obsp1, ids.obsp2, ids.obsp3].sort());
    expect((await call(token, 'GET', `/Observation?subject=Patient/${ids.p4}`)).body.entry ?? []).toEqual([]);
    expect((await call(token, 'GET', '/Observation?_summary=count')).body.total).toBe(3);
  });

  it('reaches no other patient through a chain, _include or _revinclude', async () => {
    const token = await user(`Practitioner/${ids.drA}`, 'practitioner');
    expect((await call(token, 'GET', '/Observation?subject:Patient.family=Four')).body.entry ?? []).toEqual([]);
    const included = await call(token, 'GET', `/Observation?_include=Observation:subject`);
    expect(included.text).not.toContain(ids.p4);
    const revincluded = await call(token, 'GET', `/Organization?_id=${ids.B}&_revinclude=Patient:organization`);
    expect(revincluded.text).not.toContain(ids.p4);
    expect(revincluded.text).toContain(ids.p3);
  });

  it('cannot write into another hospital\'s patient, alone or in a transaction', async () => {
    const token = await user(`Practitioner/${ids.drA}`, 'practitioner');
    expect((await call(token, 'POST', '/Observation', observation(ids.p4))).status).toBe(403);
    const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'POST', url: 'Observation' }, resource: observation(ids.p4) }] };
    expect((await call(token, 'POST', '', bundle)).status).toBe(403);
    expect((await call(token, 'POST', '/Observation', observation(ids.p2))).status).toBe(201);
  });

  it('of the other hospital sees its own patients, not the first one\'s', async () => {
    const token = await user(`Practitioner/${ids.drB}`, 'nurse');
    expect(entryIds((await call(token, 'GET', '/Patient')).body)).toEqual([ids.p3, ids.p4].sort());
  });

  it('without any PractitionerRole sees no patient data, only shared directory data', async () => {
    const token = await user(`Practitioner/${ids.drNone}`, 'practitioner');
    expect((await call(token, 'GET', '/Observation')).status).toBe(403);
    expect((await call(token, 'GET', `/Practitioner/${ids.drA}`)).status).toBe(200);
  });
});

describe('a patient user', () => {
  it('sees only their own record, whatever their user/ scopes say', async () => {
    const token = await user(`Patient/${ids.p1}`, 'patient');
    expect(entryIds((await call(token, 'GET', '/Observation')).body)).toEqual([ids.obsp1]);
    expect((await call(token, 'GET', `/Patient/${ids.p2}`)).status).toBe(403);
    expect(entryIds((await call(token, 'GET', '/Patient')).body)).toEqual([ids.p1]);
  });
});

describe('an insurer', () => {
  it('sees the Claims where it is the insurer, and nothing clinical they do not reference', async () => {
    const token = await user(`Practitioner/${ids.agent}`, 'insurer');
    expect(entryIds((await call(token, 'GET', '/Claim')).body)).toEqual([ids.claim]);
    expect((await call(token, 'GET', `/Claim/${ids.otherClaim}`)).status).toBe(403);
    expect((await call(token, 'GET', `/Observation/${ids.obsp1}`)).status).toBe(403);
    expect((await call(token, 'GET', `/Patient/${ids.p2}`)).status).toBe(403);
  });
});

describe('Consent', () => {
  const consent = (patient: string, type: 'deny' | 'permit', provision: Record<string, unknown>) => ({
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: `Patient/${patient}` },
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision: { type, ...provision },
  });
  const actor = (reference: string) => ({ actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PRCP' }] }, reference: { reference } }] });
  const withPurpose = (token: string, path: string, purpose: string) =>
    fhirRequest('GET', `${server.base}${path}`, { headers: { Authorization: `Bearer ${token}`, 'X-Purpose-Of-Use': purpose } });

  it('that denies a practitioner removes the patient from every read path for them, from the next request, until it ends', async () => {
    const token = await user(`Practitioner/${ids.drA}`, 'practitioner');
    expect((await call(token, 'GET', `/Patient/${ids.p1}`)).status).toBe(200);
    const id = await create(consent(ids.p1, 'deny', actor(`Practitioner/${ids.drA}`)));
    expect((await call(token, 'GET', `/Patient/${ids.p1}`)).status).toBe(403);
    expect((await call(token, 'GET', `/Observation/${ids.obsp1}`)).status).toBe(403);
    expect(entryIds((await call(token, 'GET', '/Patient')).body)).toEqual([ids.p2, ids.p3].sort());
    const observations = entryIds((await call(token, 'GET', '/Observation')).body);
    expect(observations).toEqual(expect.arrayContaining([ids.obsp2, ids.obsp3]));
    expect(observations).not.toContain(ids.obsp1);
    const included = await call(token, 'GET', `/Encounter?_include=Encounter:subject&_revinclude=Observation:subject`);
    expect(included.text).not.toContain(ids.p1);
    expect((await call(token, 'GET', `/Patient/${ids.p1}/$everything`)).status).toBe(403);
    expect((await call(token, 'GET', `/Observation/${ids.obsp1}/_history`)).status).toBe(403);
    expect((await call(token, 'GET', '/Observation/_history')).text).not.toContain(ids.obsp1);
    const current = (await call(admin, 'GET', `/Consent/${id}`)).body;
    await call(admin, 'PUT', `/Consent/${id}`, { ...current, status: 'inactive' });
    expect((await call(token, 'GET', `/Patient/${ids.p1}`)).status).toBe(200);
  });

  it('that denies an organisation removes the patient for its staff', async () => {
    const token = await user(`Practitioner/${ids.drA}`, 'practitioner');
    const id = await create(consent(ids.p2, 'deny', actor(`Organization/${ids.A}`)));
    expect((await call(token, 'GET', `/Patient/${ids.p2}`)).status).toBe(403);
    await call(admin, 'DELETE', `/Consent/${id}`);
    expect((await call(token, 'GET', `/Patient/${ids.p2}`)).status).toBe(200);
  });

  it('that denies a purpose of use removes the patient for requests made for that purpose', async () => {
    const token = await user(`Practitioner/${ids.drA}`, 'practitioner');
    const id = await create(
      consent(ids.p1, 'deny', { purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HRESCH' }] })
    );
    expect((await withPurpose(token, `/Patient/${ids.p1}`, 'HRESCH')).status).toBe(403);
    expect((await withPurpose(token, `/Patient/${ids.p1}`, 'TREAT')).status).toBe(200);
    await call(admin, 'DELETE', `/Consent/${id}`);
  });

  it('that denies a class of resource types removes only those types of the patient for them; an unknown class removes the whole patient', async () => {
    const token = await user(`Practitioner/${ids.drA}`, 'practitioner');
    const condition = await create({ resourceType: 'Condition', subject: { reference: `Patient/${ids.p1}` }, code: { text: 'kept' } });
    const id = await create(consent(ids.p1, 'deny', { ...actor(`Practitioner/${ids.drA}`), class: [{ system: 'http://hl7.org/fhir/resource-types', code: 'Observation' }] }));
    expect((await call(token, 'GET', `/Patient/${ids.p1}`)).status).toBe(200);
    expect((await call(token, 'GET', `/Condition/${condition}`)).status).toBe(200);
    expect((await call(token, 'GET', `/Observation/${ids.obsp1}`)).status).toBe(403);
    const observations = entryIds((await call(token, 'GET', '/Observation')).body);
    expect(observations).toEqual(expect.arrayContaining([ids.obsp2, ids.obsp3]));
    expect(observations).not.toContain(ids.obsp1);
    expect(entryIds((await call(token, 'GET', '/Patient')).body)).toContain(ids.p1);
    const everything = (await call(token, 'GET', `/Patient/${ids.p1}/$everything`)).body;
    expect(entryIds(everything)).toEqual(expect.arrayContaining([ids.p1, condition]));
    expect(entryIds(everything)).not.toContain(ids.obsp1);
    await call(admin, 'DELETE', `/Consent/${id}`);
    expect((await call(token, 'GET', `/Observation/${ids.obsp1}`)).status).toBe(200);
    const mime = await create(consent(ids.p1, 'deny', { ...actor(`Practitioner/${ids.drA}`), class: [{ system: 'urn:ietf:bcp:13', code: 'application/pdf' }] }));
    expect((await call(token, 'GET', `/Patient/${ids.p1}`)).status).toBe(403);
    await call(admin, 'DELETE', `/Consent/${mime}`);
    expect((await call(token, 'GET', `/Patient/${ids.p1}`)).status).toBe(200);
    await call(admin, 'DELETE', `/Condition/${condition}`);
  });

  it('that denies a security label removes only the resources of the patient carrying it', async () => {
    const token = await user(`Practitioner/${ids.drA}`, 'practitioner');
    const restricted = { system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' };
    const labelled = await create({ ...observation(ids.p1), meta: { security: [restricted] } });
    const otherPatientLabelled = await create({ ...observation(ids.p2), meta: { security: [restricted] } });
    const id = await create(consent(ids.p1, 'deny', { ...actor(`Organization/${ids.A}`), securityLabel: [restricted] }));
    expect((await call(token, 'GET', `/Observation/${labelled}`)).status).toBe(403);
    expect((await call(token, 'GET', `/Observation/${ids.obsp1}`)).status).toBe(200);
    expect((await call(token, 'GET', `/Observation/${otherPatientLabelled}`)).status).toBe(200);
    expect((await call(token, 'GET', `/Patient/${ids.p1}`)).status).toBe(200);
    const found = entryIds((await call(token, 'GET', `/Observation?subject=Patient/${ids.p1}`)).body);
    expect(found).toContain(ids.obsp1);
    expect(found).not.toContain(labelled);
    await call(admin, 'DELETE', `/Consent/${id}`);
    expect((await call(token, 'GET', `/Observation/${labelled}`)).status).toBe(200);
    for (const extra of [labelled, otherPatientLabelled]) await call(admin, 'DELETE', `/Observation/${extra}`);
  });

  it('that permits another organisation only a class of types or a security label grants its staff only those resources of the patient; an unknown class grants nothing', async () => {
    const token = await user(`Practitioner/${ids.drB}`, 'practitioner');
    const restricted = { system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' };
    const labelled = await create({ ...observation(ids.p1), meta: { security: [restricted] } });
    const condition = await create({ resourceType: 'Condition', subject: { reference: `Patient/${ids.p1}` }, code: { text: 'not granted' } });
    const byClass = await create(consent(ids.p1, 'permit', { ...actor(`Organization/${ids.B}`), class: [{ system: 'http://hl7.org/fhir/resource-types', code: 'Observation' }] }));
    expect((await call(token, 'GET', `/Observation/${ids.obsp1}`)).status).toBe(200);
    expect(entryIds((await call(token, 'GET', `/Observation?subject=Patient/${ids.p1}`)).body)).toEqual([ids.obsp1, labelled].sort());
    expect((await call(token, 'GET', `/Patient/${ids.p1}`)).status).toBe(403);
    expect((await call(token, 'GET', `/Condition/${condition}`)).status).toBe(403);
    // Their own hospital's patients are still theirs.
    expect((await call(token, 'GET', `/Observation/${ids.obsp4}`)).status).toBe(200);
    await call(admin, 'DELETE', `/Consent/${byClass}`);
    expect((await call(token, 'GET', `/Observation/${ids.obsp1}`)).status).toBe(403);
    const byLabel = await create(consent(ids.p1, 'permit', { ...actor(`Organization/${ids.B}`), securityLabel: [restricted] }));
    expect((await call(token, 'GET', `/Observation/${labelled}`)).status).toBe(200);
    expect((await call(token, 'GET', `/Observation/${ids.obsp1}`)).status).toBe(403);
    expect(entryIds((await call(token, 'GET', `/Observation?subject=Patient/${ids.p1}`)).body)).toEqual([labelled]);
    await call(admin, 'DELETE', `/Consent/${byLabel}`);
    const mime = await create(consent(ids.p1, 'permit', { ...actor(`Organization/${ids.B}`), class: [{ system: 'urn:ietf:bcp:13', code: 'application/pdf' }] }));
    expect((await call(token, 'GET', `/Observation/${ids.obsp1}`)).status).toBe(403);
    expect((await call(token, 'GET', `/Patient/${ids.p1}`)).status).toBe(403);
    await call(admin, 'DELETE', `/Consent/${mime}`);
    for (const [type, id] of [['Observation', labelled], ['Condition', condition]]) await call(admin, 'DELETE', `/${type}/${id}`);
  });

  it('that names resources (data of meaning instance) is about those resources only', async () => {
    const drA = await user(`Practitioner/${ids.drA}`, 'practitioner');
    const drB = await user(`Practitioner/${ids.drB}`, 'practitioner');
    const another = await create(observation(ids.p1));
    const instance = { data: [{ meaning: 'instance', reference: { reference: `Observation/${ids.obsp1}` } }] };
    const deny = await create(consent(ids.p1, 'deny', { ...actor(`Practitioner/${ids.drA}`), ...instance }));
    expect((await call(drA, 'GET', `/Observation/${ids.obsp1}`)).status).toBe(403);
    expect((await call(drA, 'GET', `/Observation/${another}`)).status).toBe(200);
    expect((await call(drA, 'GET', `/Patient/${ids.p1}`)).status).toBe(200);
    expect(entryIds((await call(drA, 'GET', `/Observation?subject=Patient/${ids.p1}`)).body)).toEqual([another]);
    await call(admin, 'DELETE', `/Consent/${deny}`);
    const permit = await create(consent(ids.p1, 'permit', { ...actor(`Organization/${ids.B}`), ...instance }));
    expect((await call(drB, 'GET', `/Observation/${ids.obsp1}`)).status).toBe(200);
    expect((await call(drB, 'GET', `/Observation/${another}`)).status).toBe(403);
    expect((await call(drB, 'GET', `/Patient/${ids.p1}`)).status).toBe(403);
    await call(admin, 'DELETE', `/Consent/${permit}`);
    await call(admin, 'DELETE', `/Observation/${another}`);
  });

  it('that is narrowed by dataPeriod is about the data whose care took place within it: a deny also takes undated data and types without a care date, a permit neither, and neither reaches the Patient', async () => {
    const drA = await user(`Practitioner/${ids.drA}`, 'practitioner');
    const drB = await user(`Practitioner/${ids.drB}`, 'practitioner');
    const old = await create({ ...observation(ids.p1), effectiveDateTime: '2012-05-01T10:00:00Z' });
    const recent = await create({ ...observation(ids.p1), effectiveDateTime: '2021-03-01' });
    const condition2011 = await create({ resourceType: 'Condition', subject: { reference: `Patient/${ids.p1}` }, code: { text: 'before' }, onsetDateTime: '2011-06' });
    const stay = await create({ resourceType: 'Encounter', status: 'finished', class: { code: 'IMP' }, subject: { reference: `Patient/${ids.p1}` }, period: { start: '2010-01-01', end: '2013-01-01' } });
    const coverage = await create({ resourceType: 'Coverage', status: 'active', beneficiary: { reference: `Patient/${ids.p1}` }, payor: [{ reference: `Organization/${ids.insurer}` }] });
    const in2012 = { start: '2012-01-01', end: '2012-12-31' };

    const deny = await create(consent(ids.p1, 'deny', { ...actor(`Practitioner/${ids.drA}`), dataPeriod: in2012 }));
    expect((await call(drA, 'GET', `/Observation/${old}`)).status).toBe(403);
    expect((await call(drA, 'GET', `/Encounter/${stay}`)).status).toBe(403);
    expect((await call(drA, 'GET', `/Observation/${recent}`)).status).toBe(200);
    expect((await call(drA, 'GET', `/Patient/${ids.p1}`)).status).toBe(200);
    // Never less denied than asked: no date to tell, so it may be within. A Condition is a
    // state (onset 2011, never abated: still there in 2012), and its type has no care date.
    expect((await call(drA, 'GET', `/Observation/${ids.obsp1}`)).status).toBe(403);
    expect((await call(drA, 'GET', `/Coverage/${coverage}`)).status).toBe(403);
    expect((await call(drA, 'GET', `/Condition/${condition2011}`)).status).toBe(403);
    expect(entryIds((await call(drA, 'GET', `/Observation?subject=Patient/${ids.p1}`)).body)).toEqual([recent]);
    const everything = entryIds((await call(drA, 'GET', `/Patient/${ids.p1}/$everything`)).body);
    expect(everything).toEqual(expect.arrayContaining([ids.p1, recent]));
    for (const hidden of [old, stay, ids.obsp1, coverage, condition2011]) expect(everything).not.toContain(hidden);
    // Paged, the record's total is not given: counted in SQL it would tell how much is hidden.
    const firstPage = (await call(drA, 'GET', `/Patient/${ids.p1}/$everything?_count=1`)).body;
    expect(firstPage.link.some((l: { relation: string }) => l.relation === 'next')).toBe(true);
    expect(firstPage.total).toBeUndefined();
    await call(admin, 'DELETE', `/Consent/${deny}`);
    expect((await call(drA, 'GET', `/Observation/${old}`)).status).toBe(200);

    const permit = await create(consent(ids.p1, 'permit', { ...actor(`Organization/${ids.B}`), dataPeriod: { start: '2020-01-01' } }));
    expect((await call(drB, 'GET', `/Observation/${recent}`)).status).toBe(200);
    expect((await call(drB, 'GET', `/Observation/${old}`)).status).toBe(403);
    // Never more granted than asked: undated data, types without a care date and the Patient stay out.
    expect((await call(drB, 'GET', `/Observation/${ids.obsp1}`)).status).toBe(403);
    expect((await call(drB, 'GET', `/Coverage/${coverage}`)).status).toBe(403);
    expect((await call(drB, 'GET', `/Patient/${ids.p1}`)).status).toBe(403);
    expect(entryIds((await call(drB, 'GET', `/Observation?subject=Patient/${ids.p1}`)).body)).toEqual([recent]);
    await call(admin, 'DELETE', `/Consent/${permit}`);
    expect((await call(drB, 'GET', `/Observation/${recent}`)).status).toBe(403);
    for (const [type, id] of [['Observation', old], ['Observation', recent], ['Condition', condition2011], ['Encounter', stay], ['Coverage', coverage]]) await call(admin, 'DELETE', `/${type}/${id}`);
  });

  it('that denies or permits a code is about the resources holding that Coding anywhere; a code given as text alone denies the whole patient', async () => {
    const drA = await user(`Practitioner/${ids.drA}`, 'practitioner');
    const drB = await user(`Practitioner/${ids.drB}`, 'practitioner');
    const hiv = { system: 'http://snomed.info/sct', code: '86406008' };
    const coded = await create({ ...observation(ids.p1), code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }, hiv] } });
    // Deep inside: a Condition whose evidence carries the code.
    const deep = await create({ resourceType: 'Condition', subject: { reference: `Patient/${ids.p1}` }, code: { text: 'follow-up' }, evidence: [{ code: [{ coding: [hiv] }] }] });
    const otherPatient = await create({ ...observation(ids.p2), code: { coding: [hiv] } });
    const deny = await create(consent(ids.p1, 'deny', { ...actor(`Practitioner/${ids.drA}`), code: [{ coding: [hiv] }] }));
    expect((await call(drA, 'GET', `/Observation/${coded}`)).status).toBe(403);
    expect((await call(drA, 'GET', `/Condition/${deep}`)).status).toBe(403);
    expect((await call(drA, 'GET', `/Observation/${ids.obsp1}`)).status).toBe(200);
    expect((await call(drA, 'GET', `/Observation/${otherPatient}`)).status).toBe(200);
    expect((await call(drA, 'GET', `/Patient/${ids.p1}`)).status).toBe(200);
    expect(entryIds((await call(drA, 'GET', `/Observation?subject=Patient/${ids.p1}`)).body)).toEqual([ids.obsp1]);
    expect(entryIds((await call(drA, 'GET', `/Condition?subject=Patient/${ids.p1}`)).body)).not.toContain(deep);
    const everything = entryIds((await call(drA, 'GET', `/Patient/${ids.p1}/$everything`)).body);
    expect(everything).toContain(ids.obsp1);
    expect(everything).not.toContain(coded);
    await call(admin, 'DELETE', `/Consent/${deny}`);
    expect((await call(drA, 'GET', `/Observation/${coded}`)).status).toBe(200);

    const permit = await create(consent(ids.p1, 'permit', { ...actor(`Organization/${ids.B}`), code: [{ coding: [hiv] }] }));
    expect((await call(drB, 'GET', `/Observation/${coded}`)).status).toBe(200);
    expect((await call(drB, 'GET', `/Condition/${deep}`)).status).toBe(200);
    expect((await call(drB, 'GET', `/Observation/${ids.obsp1}`)).status).toBe(403);
    expect((await call(drB, 'GET', `/Patient/${ids.p1}`)).status).toBe(403);
    expect(entryIds((await call(drB, 'GET', `/Observation?subject=Patient/${ids.p1}`)).body)).toEqual([coded]);
    await call(admin, 'DELETE', `/Consent/${permit}`);

    const textOnly = await create(consent(ids.p1, 'deny', { ...actor(`Practitioner/${ids.drA}`), code: [{ text: 'HIV' }] }));
    expect((await call(drA, 'GET', `/Patient/${ids.p1}`)).status).toBe(403);
    await call(admin, 'DELETE', `/Consent/${textOnly}`);
    for (const [type, id] of [['Observation', coded], ['Condition', deep], ['Observation', otherPatient]]) await call(admin, 'DELETE', `/${type}/${id}`);
  });

  it('that permits another organisation grants its staff that patient', async () => {
    const token = await user(`Practitioner/${ids.drB}`, 'practitioner');
    expect((await call(token, 'GET', `/Patient/${ids.p1}`)).status).toBe(403);
    const id = await create(consent(ids.p1, 'permit', actor(`Organization/${ids.B}`)));
    expect((await call(token, 'GET', `/Patient/${ids.p1}`)).status).toBe(200);
    expect(entryIds((await call(token, 'GET', `/Observation?subject=Patient/${ids.p1}`)).body)).toEqual([ids.obsp1]);
    await call(admin, 'DELETE', `/Consent/${id}`);
    expect((await call(token, 'GET', `/Patient/${ids.p1}`)).status).toBe(403);
  });
});

describe('an insurer and the clinical data its Claims reference', () => {
  /**
   * p5's Claim (insurer: Insurer) references a Condition (diagnosis), a Procedure, an
   * Encounter (item.encounter) and an Observation (supportingInfo); p5 has one more of
   * each that only a Claim entered in error references. p6's Claim goes to the other
   * insurer.
   */
  const ref = (type: string, key: string) => ({ reference: `${type}/${ids[key]}` });
  const clinical = async (p: string, suffix: string) => {
    const subject = { reference: `Patient/${ids[p]}` };
    ids[`cond${p}${suffix}`] = await create({ resourceType: 'Condition', subject, code: { text: `diagnosis ${suffix}` } });
    ids[`proc${p}${suffix}`] = await create({ resourceType: 'Procedure', status: 'completed', subject, code: { text: `procedure ${suffix}` } });
    ids[`enc${p}${suffix}`] = await create({ resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject });
    ids[`obs${p}${suffix}`] = await create(observation(ids[p]));
  };
  const claimOf = (p: string, insurer: string, suffix = '', status = 'active') => ({
    resourceType: 'Claim', status, use: 'claim', type: { text: 'x' }, created: '2026-02-01', priority: { text: 'normal' },
    patient: ref('Patient', p), provider: ref('Organization', 'A'), insurer: ref('Organization', insurer),
    insurance: [{ sequence: 1, focal: true, coverage: { display: 'x' } }],
    diagnosis: [{ sequence: 1, diagnosisReference: ref('Condition', `cond${p}${suffix}`) }],
    procedure: [{ sequence: 1, procedureReference: ref('Procedure', `proc${p}${suffix}`) }],
    supportingInfo: [{ sequence: 1, category: { text: 'lab' }, valueReference: ref('Observation', `obs${p}${suffix}`) }],
    item: [{ sequence: 1, productOrService: { text: 'visit' }, encounter: [ref('Encounter', `enc${p}${suffix}`)] }],
  });
  const insurerToken = () => user(`Practitioner/${ids.agent}`, 'insurer');

  beforeAll(async () => {
    ids.p5 = await create({ resourceType: 'Patient', name: [{ family: 'Five' }] });
    ids.p6 = await create({ resourceType: 'Patient', name: [{ family: 'Six' }] });
    await clinical('p5', '');
    await clinical('p5', 'Unclaimed');
    await clinical('p6', '');
    ids.claimp5 = await create(claimOf('p5', 'insurer'));
    ids.claimp6 = await create(claimOf('p6', 'otherInsurer'));
    await create(claimOf('p5', 'insurer', 'Unclaimed', 'entered-in-error'));
  }, 60000);

  it('reads the patient, diagnosis, procedure, encounter and supporting Observation of its Claim', async () => {
    const token = await insurerToken();
    expect((await call(token, 'GET', `/Patient/${ids.p5}`)).status).toBe(200);
    for (const [type, key] of [['Condition', 'condp5'], ['Procedure', 'procp5'], ['Encounter', 'encp5'], ['Observation', 'obsp5']]) {
      expect((await call(token, 'GET', `/${type}/${ids[key]}`)).status).toBe(200);
    }
  });

  it('finds them by search, and nothing else of that patient', async () => {
    const token = await insurerToken();
    expect(entryIds((await call(token, 'GET', `/Condition?_id=${ids.condp5}`)).body)).toEqual([ids.condp5]);
    expect(entryIds((await call(token, 'GET', `/Condition?patient=Patient/${ids.p5}`)).body)).toEqual([ids.condp5]);
    expect(entryIds((await call(token, 'GET', `/Procedure?subject=Patient/${ids.p5}`)).body)).toEqual([ids.procp5]);
    expect(entryIds((await call(token, 'GET', '/Observation')).body)).toEqual([ids.obsp5]);
    expect(entryIds((await call(token, 'GET', `/Encounter?patient=Patient/${ids.p5}`)).body)).toEqual([ids.encp5]);
    const included = await call(token, 'GET', `/Claim?_id=${ids.claimp5}&_include=Claim:patient`);
    expect(entryIds(included.body)).toEqual([ids.claimp5, ids.p5].sort());
  });

  it('is refused the same types where no Claim of its own references them, but one entered in error', async () => {
    const token = await insurerToken();
    for (const [type, key] of [['Condition', 'condp5Unclaimed'], ['Procedure', 'procp5Unclaimed'], ['Encounter', 'encp5Unclaimed'], ['Observation', 'obsp5Unclaimed']]) {
      expect((await call(token, 'GET', `/${type}/${ids[key]}`)).status).toBe(403);
    }
    expect(entryIds((await call(token, 'GET', `/Condition?_id=${ids.condp5Unclaimed}`)).body)).toEqual([]);
  });

  it('is refused what the other insurer\'s Claim references', async () => {
    const token = await insurerToken();
    expect((await call(token, 'GET', `/Condition/${ids.condp6}`)).status).toBe(403);
    expect((await call(token, 'GET', `/Patient/${ids.p6}`)).status).toBe(403);
    expect(entryIds((await call(token, 'GET', `/Condition?patient=Patient/${ids.p6}`)).body)).toEqual([]);
    expect(entryIds((await call(token, 'GET', '/Patient')).body)).not.toContain(ids.p6);
  });

  it('loses them while a Consent denies its organisation that patient', async () => {
    const token = await insurerToken();
    const id = await create({
      resourceType: 'Consent',
      status: 'active',
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
      category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
      patient: { reference: `Patient/${ids.p5}` },
      policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
      provision: { type: 'deny', actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PRCP' }] }, reference: ref('Organization', 'insurer') }] },
    });
    expect((await call(token, 'GET', `/Patient/${ids.p5}`)).status).toBe(403);
    expect((await call(token, 'GET', `/Condition/${ids.condp5}`)).status).toBe(403);
    expect(entryIds((await call(token, 'GET', `/Condition?_id=${ids.condp5}`)).body)).toEqual([]);
    expect(entryIds((await call(token, 'GET', '/Observation')).body)).toEqual([]);
    await call(admin, 'DELETE', `/Consent/${id}`);
    expect((await call(token, 'GET', `/Condition/${ids.condp5}`)).status).toBe(200);
  });
});
