import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { informationFiles, readSyntheaBundle, type SyntheaBundle } from '../support/synthea-bundles';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * Break-the-glass end to end, on a real Synthea patient: the patient is cared for at a
 * Synthea hospital (A, by its Encounters) and has a Consent denying hospital B. Dr B
 * (practitioner of B) cannot see the patient, breaks the glass, gets the critical
 * summary, and the AuditEvent (BTG, with the reason) and the Communications to the
 * patient and to A's privacy officer exist. What the summary must hold is worked out
 * from the bundle file, not from the server.
 */
const PATIENT_FILE = 'b3664f86-0ce9-4a2c-ae85-4d390d438512.json.gz';
const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';

let server: TestServer;
let system: string;
let drB: string;
let bundle: SyntheaBundle;
const ids: Record<string, string> = {};

const call = (token: string | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  fhirRequest(method, `${server.base}${path}`, { body, headers: token ? { Authorization: `Bearer ${token}`, ...headers } : headers });
const create = async (resource: Record<string, unknown>): Promise<string> => {
  const res = await call(system, 'POST', `/${resource.resourceType}`, resource);
  expect(res.status).toBe(201);
  return res.body.id;
};
const user = (fhirUser: string, role: string, scope = 'user/*.cruds') => mintToken(server, { scope, userId: `u-${fhirUser}-${role}`, fhirUser, role });
const breakGlass = (token: string | undefined, parameter: unknown[], path = `/Patient/${ids.patient}/$emergency-access`) =>
  call(token, 'POST', path, { resourceType: 'Parameters', parameter });
const reason = (text: string) => ({ name: 'reason', valueString: text });
const idsOf = (resources: any[], type: string): string[] => resources.filter((r) => r.resourceType === type).map((r) => r.id).sort();

/** `Type/id` as stored, for each entry of the loaded bundle, from the transaction response. */
const stored: string[] = [];

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  system = await mintToken(server, { scope: 'system/*.*' });
  for (const file of informationFiles()) {
    expect((await call(system, 'POST', '', readSyntheaBundle(file))).status).toBe(200);
  }
  bundle = readSyntheaBundle(PATIENT_FILE);
  const loaded = await call(system, 'POST', '', bundle);
  expect(loaded.status).toBe(200);
  for (const entry of loaded.body.entry) stored.push(entry.response.location.slice(server.base.length + 1).replace(/\/_history\/.*$/, ''));
  ids.patient = stored[bundle.entry.findIndex((e) => e.resource.resourceType === 'Patient')].split('/')[1];

  // Hospital A: where the patient's encounters took place.
  const encounters = await call(system, 'GET', `/Encounter?patient=Patient/${ids.patient}&_count=1`);
  ids.A = encounters.body.entry[0].resource.serviceProvider.reference.split('/')[1];
  await call(system, 'PATCH', `/Patient/${ids.patient}`, [{ op: 'add', path: '/managingOrganization', value: { reference: `Organization/${ids.A}` } }], { 'Content-Type': 'application/json-patch+json' });
  ids.B = await create({ resourceType: 'Organization', name: 'Hospital B' });
  ids.drB = await create({ resourceType: 'Practitioner', name: [{ family: 'Beta' }] });
  ids.officer = await create({ resourceType: 'Practitioner', name: [{ family: 'Officer' }] });
  await create({ resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${ids.drB}` }, organization: { reference: `Organization/${ids.B}` } });
  ids.officerRole = await create({
    resourceType: 'PractitionerRole',
    practitioner: { reference: `Practitioner/${ids.officer}` },
    organization: { reference: `Organization/${ids.A}` },
    code: [{ coding: [{ system: 'http://example.org/roles', code: 'privacy-officer' }], text: 'Privacy officer' }],
  });
  ids.denyB = await create({
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: `Patient/${ids.patient}` },
    policyRule: { text: 'no sharing with hospital B' },
    provision: { type: 'deny', actor: [{ role: { text: 'recipient' }, reference: { reference: `Organization/${ids.B}` } }] },
  });
  drB = await user(`Practitioner/${ids.drB}`, 'practitioner');
}, 120000);

afterAll(async () => {
  await server?.stop();
});

describe('a practitioner of another hospital, denied by the patient\'s Consent', () => {
  it('cannot read the patient or their conditions without breaking the glass', async () => {
    expect([403, 404]).toContain((await call(drB, 'GET', `/Patient/${ids.patient}`)).status);
    const conditions = await call(drB, 'GET', `/Condition?patient=Patient/${ids.patient}`);
    expect(conditions.body.entry ?? []).toHaveLength(0);
  });

  it('breaks the glass and gets the patient, every allergy, and only the active conditions and medication requests', async () => {
    const res = await breakGlass(drB, [reason('Unconscious in our emergency room')]);
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('Bundle');
    const resources = res.body.entry.map((e: any) => e.resource);
    expect(resources[0]).toMatchObject({ resourceType: 'Patient', id: ids.patient });
    const expected = (type: string, keep: (r: any) => boolean) =>
      bundle.entry.map((e, i) => ({ e, ref: stored[i] })).filter(({ e }) => e.resource.resourceType === type && keep(e.resource)).map(({ ref }) => ref.split('/')[1]).sort();
    const active = expected('Condition', (c) => ['active', 'recurrence', 'relapse'].includes(c.clinicalStatus?.coding?.[0]?.code));
    expect(active.length).toBeGreaterThan(0);
    expect(active.length).toBeLessThan(expected('Condition', () => true).length);
    expect(idsOf(resources, 'Condition')).toEqual(active);
    const activeOrders = expected('MedicationRequest', (m) => m.status === 'active');
    expect(activeOrders.length).toBeLessThan(expected('MedicationRequest', () => true).length);
    expect(idsOf(resources, 'MedicationRequest')).toEqual(activeOrders);
    expect(idsOf(resources, 'AllergyIntolerance')).toEqual(expected('AllergyIntolerance', () => true));
    // Vital signs: the latest of each code, nothing older.
    const vitals = resources.filter((r: any) => r.resourceType === 'Observation' && r.category?.some((c: any) => c.coding?.some((k: any) => k.code === 'vital-signs')));
    expect(vitals.length).toBeGreaterThan(0);
    const codes = vitals.map((v: any) => v.code.coding.map((c: any) => `${c.system}|${c.code}`).sort().join(','));
    expect(new Set(codes).size).toBe(codes.length);
    for (const vital of vitals) {
      const key = vital.code.coding[0].code;
      const newest = bundle.entry
        .filter((e) => e.resource.resourceType === 'Observation' && e.resource.code?.coding?.[0]?.code === key)
        .map((e) => e.resource.effectiveDateTime as string)
        .sort()
        .pop();
      expect(Date.parse(vital.effectiveDateTime)).toBe(Date.parse(newest as string));
    }
  });

  it('also carries blood group, advance directives, implants and alerts, and leaves out what is entered in error or inactive', async () => {
    const subject = { reference: `Patient/${ids.patient}` };
    const bloodGroup = await create({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '882-1' }] }, subject, effectiveDateTime: '2020-01-01', valueCodeableConcept: { text: 'A+' } });
    const directive = await create({
      resourceType: 'Consent',
      status: 'active',
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'adr' }] },
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentcategorycodes', code: 'dnr' }] }],
      patient: subject,
      policyRule: { text: 'do not resuscitate' },
    });
    const implant = await create({ resourceType: 'Device', status: 'active', type: { text: 'pacemaker' }, patient: subject });
    const removed = await create({ resourceType: 'Device', status: 'inactive', type: { text: 'old stent' }, patient: subject });
    const alert = await create({ resourceType: 'Flag', status: 'active', code: { text: 'MRSA carrier' }, subject });
    const wrong = await create({ resourceType: 'AllergyIntolerance', patient: subject, code: { text: 'nothing' }, verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', code: 'entered-in-error' }] } });
    const res = await breakGlass(drB, [reason('Bleeding, needs transfusion')]);
    const refs = res.body.entry.map((e: any) => `${e.resource.resourceType}/${e.resource.id}`);
    expect(refs).toEqual(expect.arrayContaining([`Observation/${bloodGroup}`, `Consent/${directive}`, `Device/${implant}`, `Flag/${alert}`]));
    expect(refs).not.toContain(`Device/${removed}`);
    expect(refs).not.toContain(`AllergyIntolerance/${wrong}`);
    // The Consent that denies hospital B is no advance directive.
    expect(refs).not.toContain(`Consent/${ids.denyB}`);
  });

  it('leaves an AuditEvent with purpose of use BTG, the reason, the practitioner and the patient', async () => {
    const res = await call(system, 'GET', `/AuditEvent?entity=Patient/${ids.patient}&action=E&_count=100`);
    expect(res.status).toBe(200);
    const events = (res.body.entry ?? []).map((e: any) => e.resource).filter((a: any) => a.outcome === '0' && a.subtype?.some((s: any) => s.code === 'emergency-access'));
    expect(events).toHaveLength(2);
    const event = events.find((e: any) => e.purposeOfEvent[0].text === 'Unconscious in our emergency room');
    expect(event.purposeOfEvent[0].coding).toContainEqual({ system: ACT_REASON, code: 'BTG' });
    expect(event.purposeOfEvent[0].text).toBe('Unconscious in our emergency room');
    const agent = event.agent.find((a: any) => a.who?.reference === `Practitioner/${ids.drB}`);
    expect(agent.purposeOfUse[0].coding).toContainEqual({ system: ACT_REASON, code: 'BTG' });
    expect(event.entity.map((e: any) => e.what?.reference)).toContain(`Patient/${ids.patient}`);
  });

  it('tells the patient and the privacy officer of the managing organisation', async () => {
    const res = await call(system, 'GET', `/Communication?subject=Patient/${ids.patient}`);
    // Two calls so far: the first and the one for the extra facts, each telling both.
    const notices = (res.body.entry ?? []).map((e: any) => e.resource).filter((c: any) => c.payload[0].contentString.includes('Unconscious in our emergency room'));
    const recipients = notices.map((c: any) => c.recipient.map((r: any) => r.reference).join(',')).sort();
    expect(recipients).toEqual([`Patient/${ids.patient}`, `PractitionerRole/${ids.officerRole}`].sort());
    for (const notice of notices) {
      expect(notice.reasonCode[0].coding[0]).toMatchObject({ system: ACT_REASON, code: 'BTG' });
      expect(notice.sender.reference).toBe(`Practitioner/${ids.drB}`);
      expect(notice.payload[0].contentString).toContain('Unconscious in our emergency room');
    }
  });

  it('still cannot read the record afterwards when no access was asked for', async () => {
    expect([403, 404]).toContain((await call(drB, 'GET', `/Patient/${ids.patient}`)).status);
  });

  it('finds the patient by health ID at type level', async () => {
    const ssn = bundle.entry.find((e) => e.resource.resourceType === 'Patient')?.resource.identifier.find((i: any) => i.system === 'http://hl7.org/fhir/sid/us-ssn');
    const res = await breakGlass(drB, [reason('Found by ID'), { name: 'identifier', valueIdentifier: { system: ssn.system, value: ssn.value } }], '/Patient/$emergency-access');
    expect(res.status).toBe(200);
    expect(res.body.entry[0].resource.id).toBe(ids.patient);
    const unknown = await breakGlass(drB, [reason('x'), { name: 'identifier', valueIdentifier: { system: ssn.system, value: 'no-such-id' } }], '/Patient/$emergency-access');
    expect(unknown.status).toBe(404);
  });
});

describe('refusals, each audited', () => {
  it('a missing or empty reason is a 400 OperationOutcome', async () => {
    for (const parameter of [[], [reason('   ')]]) {
      const res = await breakGlass(drB, parameter);
      expect(res.status).toBe(400);
      expect(res.body.resourceType).toBe('OperationOutcome');
    }
  });

  it('a role without the emergency permission gets 403', async () => {
    const pharmacist = await user(`Practitioner/${ids.drB}`, 'pharmacist');
    const res = await breakGlass(pharmacist, [reason('curious')]);
    expect(res.status).toBe(403);
    const patientUser = await user(`Patient/${ids.patient}`, 'patient', 'patient/*.rs');
    expect((await breakGlass(patientUser, [reason('me')])).status).toBe(403);
  });

  it('a backend service needs a scope that reads Patients', async () => {
    const narrow = await mintToken(server, { scope: 'system/Observation.rs' });
    expect((await breakGlass(narrow, [reason('x')])).status).toBe(403);
    expect((await breakGlass(system, [reason('EHR emergency workflow')])).status).toBe(200);
  });

  it('the refusals are in the audit log with purpose BTG and a failure outcome', async () => {
    const res = await call(system, 'GET', `/AuditEvent?entity=Patient/${ids.patient}&outcome=4&_count=200`);
    const failures = (res.body.entry ?? []).map((e: any) => e.resource).filter((a: any) => a.subtype?.some((s: any) => s.code === 'emergency-access') && a.outcome === '4');
    // two missing reasons, the pharmacist, the patient, the narrow backend service
    expect(failures.length).toBe(5);
    for (const event of failures) expect(event.purposeOfEvent[0].coding).toContainEqual({ system: ACT_REASON, code: 'BTG' });
  });
});

describe('time-limited access to the full record', () => {
  it('grants the practitioner the record for the minutes asked, through a Consent that ends by itself', async () => {
    const before = Date.now();
    const res = await breakGlass(drB, [reason('Surgery needs the full history'), { name: 'accessMinutes', valueInteger: 30 }]);
    expect(res.status).toBe(200);
    expect((await call(drB, 'GET', `/Patient/${ids.patient}`)).status).toBe(200);
    const conditions = await call(drB, 'GET', `/Condition?patient=Patient/${ids.patient}&_count=100`);
    expect(conditions.body.entry.length).toBe(bundle.entry.filter((e) => e.resource.resourceType === 'Condition').length);
    const grants = await call(system, 'GET', `/Consent?patient=Patient/${ids.patient}&actor=Practitioner/${ids.drB}`);
    expect(grants.body.entry).toHaveLength(1);
    const end = Date.parse(grants.body.entry[0].resource.provision.period.end);
    expect(end).toBeGreaterThanOrEqual(before + 30 * 60_000);
    expect(end).toBeLessThanOrEqual(Date.now() + 30 * 60_000);
    // The grant is named in the AuditEvent of the call.
    const audit = await call(system, 'GET', `/AuditEvent?entity=Consent/${grants.body.entry[0].resource.id}`);
    expect(audit.body.entry).toHaveLength(1);
    // What the grant alone let them read is recorded with purpose of use BTG.
    const reads = await call(system, 'GET', `/AuditEvent?entity=Patient/${ids.patient}&subtype=read&outcome=0`);
    const drBReads = reads.body.entry.map((e: any) => e.resource).filter((a: any) => a.agent.some((g: any) => g.who?.reference === `Practitioner/${ids.drB}`));
    expect(drBReads.length).toBeGreaterThan(0);
    for (const read of drBReads) expect(read.purposeOfEvent[0].coding).toContainEqual({ system: ACT_REASON, code: 'BTG' });
  });

  it('an emergency grant whose period has ended gives nothing', async () => {
    const nurse = await create({ resourceType: 'Practitioner', name: [{ family: 'Nurse' }] });
    await create({ resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${nurse}` }, organization: { reference: `Organization/${ids.B}` } });
    const ended = { start: new Date(Date.now() - 3_600_000).toISOString(), end: new Date(Date.now() - 60_000).toISOString() };
    await create({
      resourceType: 'Consent',
      status: 'active',
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
      category: [{ coding: [{ system: ACT_REASON, code: 'BTG' }] }],
      patient: { reference: `Patient/${ids.patient}` },
      policyRule: { text: 'emergency' },
      provision: { type: 'permit', period: ended, actor: [{ role: { text: 'recipient' }, reference: { reference: `Practitioner/${nurse}` } }], purpose: [{ system: ACT_REASON, code: 'BTG' }] },
    });
    const token = await user(`Practitioner/${nurse}`, 'nurse');
    expect([403, 404]).toContain((await call(token, 'GET', `/Patient/${ids.patient}`)).status);
  });

  it('refuses more than the maximum, and a grant for a token without a practitioner', async () => {
    expect((await breakGlass(drB, [reason('x'), { name: 'accessMinutes', valueInteger: 100000 }])).status).toBe(400);
    expect((await breakGlass(system, [reason('x'), { name: 'accessMinutes', valueInteger: 5 }])).status).toBe(400);
  });
});
