import type { Bundle } from '@medplum/fhirtypes';
import { fhirRequest, searchAllPages } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { loadSyntheaPatients } from '../support/synthea-load';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * `Patient/$summary` (HL7 International Patient Summary) over Synthea patients loaded as
 * the transactions they are. What each section holds is worked out here from the
 * patient's data as read back one type at a time, with the section rules written out
 * again (IPS section codes; active, past, latest per code), not taken from the server.
 */
let server: TestServer;
let patients: string[];
const LOINC = 'http://loinc.org';

beforeAll(async () => {
  // Requests without a token have full access (AUTH_REQUIRED=false); a token is still held to its grant.
  server = await startTestServer();
  patients = await loadSyntheaPatients(server.base, 2);
}, 120000);

afterAll(async () => {
  await server?.stop();
});

const call = (method: string, path: string, body?: unknown, token?: string) =>
  fhirRequest(method, path.startsWith('http') ? path : `${server.base}${path}`, { body, headers: token ? { Authorization: `Bearer ${token}` } : {} });

async function all(type: string, patient: string): Promise<any[]> {
  return searchAllPages(`${server.base}/${type}?patient=Patient/${patient}&_count=500`);
}

const codes = (concept: any): string[] => (concept?.coding ?? []).map((c: any) => c.code);
const inError = (r: any): boolean => r.status === 'entered-in-error' || codes(r.verificationStatus).some((c) => c === 'entered-in-error' || c === 'refuted');
const key = (r: any): string => `${r.resourceType}/${r.id}`;
const when = (r: any): string => r.effectiveDateTime ?? r.effectivePeriod?.start ?? r.issued ?? '';

/** The latest of each code: for each code, the observations at its latest time (any of which may be chosen). */
function latest(observations: any[]): Map<string, Set<string>> {
  const byCode = new Map<string, any[]>();
  for (const o of observations) {
    const code = codes(o.code).sort().join(',') || o.code?.text;
    byCode.set(code, [...(byCode.get(code) ?? []), o]);
  }
  const result = new Map<string, Set<string>>();
  for (const [code, list] of byCode) {
    const top = list.map(when).sort().reverse()[0];
    result.set(code, new Set(list.filter((o) => when(o) === top).map(key)));
  }
  return result;
}

async function expectedSections(patient: string): Promise<Map<string, { exact?: string[]; latest?: Map<string, Set<string>> }>> {
  const conditions = (await all('Condition', patient)).filter((r) => !inError(r));
  const sections = new Map<string, { exact?: string[]; latest?: Map<string, Set<string>> }>();
  sections.set('11450-4', { exact: conditions.filter((c) => ['active', 'recurrence', 'relapse'].some((s) => codes(c.clinicalStatus).includes(s))).map(key) });
  sections.set('48765-2', { exact: (await all('AllergyIntolerance', patient)).filter((r) => !inError(r)).map(key) });
  sections.set('10160-0', {
    exact: [
      ...(await all('MedicationStatement', patient)).filter((r) => ['active', 'intended', 'on-hold'].includes(r.status)),
      ...(await all('MedicationRequest', patient)).filter((r) => ['active', 'on-hold'].includes(r.status)),
    ].map(key),
  });
  sections.set('11369-6', { exact: (await all('Immunization', patient)).filter((r) => !inError(r)).map(key) });
  sections.set('47519-4', { exact: (await all('Procedure', patient)).filter((r) => !inError(r)).map(key) });
  sections.set('46264-8', { exact: (await all('DeviceUseStatement', patient)).filter((r) => !inError(r)).map(key) });
  const observations = (await all('Observation', patient)).filter((r) => !inError(r));
  const category = (o: any, c: string) => (o.category ?? []).some((cc: any) => codes(cc).includes(c));
  sections.set('30954-2', { latest: latest(observations.filter((o) => category(o, 'laboratory'))) });
  sections.set('8716-3', { latest: latest(observations.filter((o) => category(o, 'vital-signs'))) });
  sections.set('11348-0', { exact: conditions.filter((c) => ['inactive', 'remission', 'resolved'].some((s) => codes(c.clinicalStatus).includes(s))).map(key) });
  return sections;
}

const REQUIRED = ['11450-4', '48765-2', '10160-0'];

test.each([0, 1])('the summary of Synthea patient %i: a document whose Composition holds exactly the IPS sections its data calls for, each with a narrative, closed over its references', async (index) => {
  const patient = patients[index];
  const res = await call('GET', `/Patient/${patient}/$summary`);
  expect(res.status).toBe(200);
  const bundle = res.body as Bundle;
  expect(bundle.type).toBe('document');
  expect(bundle.identifier?.value).toBeTruthy();
  const composition = bundle.entry?.[0].resource as any;
  expect(composition.resourceType).toBe('Composition');
  expect(composition.type.coding).toContainEqual(expect.objectContaining({ system: LOINC, code: '60591-5' }));
  // Absolute: the Composition's own fullUrl is a urn:uuid, against which a relative reference resolves nowhere.
  expect(composition.subject.reference).toBe(`${server.base}/Patient/${patient}`);
  const author = bundle.entry?.find((e) => e.fullUrl === composition.author[0].reference);
  expect(author?.resource?.resourceType).toBe('Device');

  const expected = await expectedSections(patient);
  const present = new Map<string, any>(composition.section.map((s: any) => [s.code.coding[0].code, s]));
  for (const [code, rule] of expected) {
    const section = present.get(code);
    const size = rule.exact?.length ?? rule.latest?.size ?? 0;
    if (size === 0) {
      if (REQUIRED.includes(code)) expect(section?.emptyReason?.coding?.[0]?.code).toBe('nilknown');
      else expect(section).toBeUndefined();
      continue;
    }
    const entries: string[] = section.entry.map((e: any) => e.reference.slice(server.base.length + 1));
    if (rule.exact) expect([code, [...entries].sort()]).toEqual([code, [...rule.exact].sort()]);
    if (rule.latest) {
      expect(entries).toHaveLength(rule.latest.size);
      for (const entry of entries) expect([...rule.latest.values()].some((candidates) => candidates.has(entry))).toBe(true);
    }
    expect(section.text.div).toContain('<li>');
  }
  expect([...present.keys()].every((code) => expected.has(code))).toBe(true);
  // Every section entry is in the Bundle, and so is everything they refer to: the server's validator finds no dangling reference.
  const inBundle = new Set(bundle.entry?.map((e) => e.fullUrl));
  for (const section of composition.section) for (const e of section.entry ?? []) expect(inBundle.has(e.reference)).toBe(true);
  expect(bundle.entry?.filter((e) => e.resource?.resourceType === 'Patient')).toHaveLength(1);
  const validated = await call('POST', '/Bundle/$validate', bundle);
  expect(validated.body.issue.filter((i: any) => i.severity === 'error' || i.severity === 'fatal')).toEqual([]);
}, 60000);

test('by identifier at type level, by POST too; errors are OperationOutcomes', async () => {
  const patient = (await call('GET', `/Patient/${patients[0]}`)).body;
  const identifier = patient.identifier.find((i: any) => i.system && i.value);
  const byId = await call('GET', `/Patient/${patients[0]}/$summary`);
  const sectionsOf = (b: any) => b.entry[0].resource.section.map((s: any) => [s.code.coding[0].code, (s.entry ?? []).map((e: any) => e.reference).sort()]);
  const byIdentifier = await call('GET', `/Patient/$summary?identifier=${encodeURIComponent(`${identifier.system}|${identifier.value}`)}`);
  expect(byIdentifier.status).toBe(200);
  expect(sectionsOf(byIdentifier.body)).toEqual(sectionsOf(byId.body));
  const posted = await call('POST', '/Patient/$summary', { resourceType: 'Parameters', parameter: [{ name: 'identifier', valueIdentifier: { system: identifier.system, value: identifier.value } }] });
  expect(posted.status).toBe(200);
  expect(sectionsOf(posted.body)).toEqual(sectionsOf(byId.body));

  for (const [path, status] of [
    ['/Patient/$summary', 400],
    ['/Patient/$summary?identifier=urn:nowhere|0', 404],
    [`/Patient/${patients[0]}/$summary?identifier=x|y`, 400],
    [`/Patient/${patients[0]}/$summary?profile=http://example.org/StructureDefinition/other`, 400],
    ['/Patient/nope/$summary', 404],
  ] as const) {
    const res = await call('GET', path);
    expect([path, res.status]).toEqual([path, status]);
    expect(res.body.resourceType).toBe('OperationOutcome');
  }
});

test("a patient's own token gets their summary and not another patient's", async () => {
  const own = await mintToken(server, { scope: 'patient/*.rs', userId: 'u-summary', fhirUser: `Patient/${patients[0]}`, role: 'patient', patient: patients[0] });
  expect((await call('GET', `/Patient/${patients[0]}/$summary`, undefined, own)).status).toBe(200);
  expect([403, 404]).toContain((await call('GET', `/Patient/${patients[1]}/$summary`, undefined, own)).status);
});

test('the CapabilityStatement lists summary on Patient with the IPS definition', async () => {
  const statement = (await call('GET', '/metadata')).body;
  const patient = statement.rest[0].resource.find((r: any) => r.type === 'Patient');
  expect(patient.operation).toContainEqual({ name: 'summary', definition: 'http://hl7.org/fhir/uv/ips/OperationDefinition/summary' });
});

