import { randomUUID } from 'node:crypto';
import { MedplumClient, OperationOutcomeError, type FetchLike } from '@medplum/core';
import type { Bundle, Observation, OperationOutcome, Patient, Resource, ValueSet } from '@medplum/fhirtypes';
import { postForm, registerConfidentialClient, type ConfidentialClient } from '../support/oauth';
import { readHl7Example } from '../support/hl7-examples';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * The server driven by a real, widely used FHIR client: MedplumClient from @medplum/core,
 * logged in with SMART client credentials at the server's own token endpoint, and used
 * only through its own methods. The HTTP exchanges are recorded (not altered) so the
 * statuses can be checked against FHIR R4 (https://hl7.org/fhir/R4/http.html).
 */

interface Exchange {
  method: string;
  url: string;
  status: number;
  headers: Headers;
}

let server: TestServer;
let medplum: MedplumClient;
let confidential: ConfidentialClient;
const exchanges: Exchange[] = [];

const recordingFetch: FetchLike = async (url: string, options?: any) => {
  const res = await fetch(url, options);
  exchanges.push({ method: options?.method ?? 'GET', url, status: res.status, headers: res.headers });
  return res;
};

function lastExchange(): Exchange {
  return exchanges[exchanges.length - 1];
}

function newClient(): MedplumClient {
  return new MedplumClient({
    baseUrl: server.url,
    fhirUrlPath: 'fhir/',
    tokenUrl: 'auth/token',
    fetch: recordingFetch,
    cacheTime: 0,
  });
}

/** The OperationOutcome the client surfaces for a failed request. */
async function failure(promise: Promise<unknown>): Promise<OperationOutcome> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(OperationOutcomeError);
    return (err as OperationOutcomeError).outcome;
  }
  throw new Error('the request succeeded but was expected to fail');
}

/** An HL7 R4 example without its id, narrative and meta: a body a client would POST. */
function example<T extends Resource>(file: string): T {
  const { id: _id, text: _text, meta: _meta, ...body } = readHl7Example(file);
  return body as T;
}

/** HL7's Patient example with an identifier of its own, so each test finds only its patient. */
function examplePatient(): { patient: Patient; identifier: string } {
  const patient = example<Patient>('Patient-example.json');
  const value = `mc-${randomUUID()}`;
  patient.identifier = [{ ...patient.identifier?.[0], value }];
  return { patient, identifier: `${patient.identifier[0].system}|${value}` };
}

function withoutServerMeta<T extends Resource>(resource: T): Omit<T, 'meta' | 'id'> {
  const { meta: _meta, id: _id, ...rest } = resource;
  return rest;
}

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  confidential = await registerConfidentialClient(server, 'system/*.*');
  // MedplumClient.startClientLogin sends no scope, which SMART Backend Services requires
  // (tested below); so the token is asked for as a SMART client would, and handed to the client.
  const token = await postForm(server, '/auth/token', {
    grant_type: 'client_credentials',
    client_id: confidential.id,
    client_secret: confidential.secret,
    scope: 'system/*.*',
  });
  expect(token.status).toBe(200);
  medplum = newClient();
  medplum.setAccessToken(token.json.access_token as string);
});

afterAll(async () => {
  await server?.stop();
});

describe('authentication', () => {
  test('the client sends the bearer token it was given and the server accepts it', async () => {
    expect(medplum.isAuthenticated()).toBe(true);
    const bundle = await medplum.search('Patient', { _count: '1' });
    expect(bundle.resourceType).toBe('Bundle');
    expect(lastExchange().status).toBe(200);
  });

  test('startClientLogin, which asks the token endpoint without a scope, is refused as SMART Backend Services requires', async () => {
    const client = newClient();
    await expect(client.startClientLogin(confidential.id, confidential.secret)).rejects.toThrow(OperationOutcomeError);
    expect(lastExchange()).toMatchObject({ method: 'POST', url: `${server.url}/auth/token`, status: 400 });
    expect(client.getAccessToken()).toBeUndefined();
  });

  test('a client without a token is refused with 401 and surfaces it as unauthenticated', async () => {
    const anonymous = newClient();
    const outcome = await failure(anonymous.readResource('Patient', 'anything'));
    expect(lastExchange().status).toBe(401);
    expect(lastExchange().headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    // The client replaces the server's body by its own 'unauthorized' outcome.
    expect(outcome.issue?.[0]?.code).toBe('login');
  });
});

describe('create, read, update, patch, delete', () => {
  test('createResource of the HL7 Patient example assigns an id and version 1 and returns the resource as sent', async () => {
    const { patient } = examplePatient();
    const created = await medplum.createResource(patient);
    expect(lastExchange().status).toBe(201);
    expect(lastExchange().headers.get('location')).toBe(`${server.base}/Patient/${created.id}/_history/1`);
    expect(created.id).toMatch(/^[A-Za-z0-9\-.]{1,64}$/);
    expect(created.meta?.versionId).toBe('1');
    expect(Number.isNaN(Date.parse(created.meta?.lastUpdated as string))).toBe(false);
    expect(withoutServerMeta(created)).toEqual(patient);
  });

  test('readResource returns what was created', async () => {
    const created = await medplum.createResource(examplePatient().patient);
    const read = await medplum.readResource('Patient', created.id);
    expect(read).toEqual(created);
    expect(lastExchange().headers.get('etag')).toBe('W/"1"');
  });

  test('updateResource makes version 2, and an update with a stale If-Match is refused with 412', async () => {
    const created = await medplum.createResource(examplePatient().patient);
    const updated = await medplum.updateResource({ ...created, gender: 'other' });
    expect(lastExchange().status).toBe(200);
    expect(lastExchange().headers.get('etag')).toBe('W/"2"');
    expect(updated.meta?.versionId).toBe('2');
    expect(updated.gender).toBe('other');
    expect(Date.parse(updated.meta?.lastUpdated as string)).toBeGreaterThanOrEqual(Date.parse(created.meta?.lastUpdated as string));

    const stale = await failure(medplum.updateResource({ ...created, gender: 'female' }, { headers: { 'If-Match': 'W/"1"' } }));
    expect(lastExchange().status).toBe(412);
    expect(stale.resourceType).toBe('OperationOutcome');
    expect(stale.issue?.[0]?.severity).toBe('error');

    const current = await medplum.updateResource({ ...updated, active: false }, { headers: { 'If-Match': 'W/"2"' } });
    expect(current.meta?.versionId).toBe('3');
    expect((await medplum.readResource('Patient', created.id)).gender).toBe('other');
  });

  test('patchResource applies a JSON Patch as a new version, and a failing test operation changes nothing', async () => {
    const created = await medplum.createResource(examplePatient().patient);
    const patched = await medplum.patchResource('Patient', created.id, [
      { op: 'test', path: '/birthDate', value: '1974-12-25' },
      { op: 'replace', path: '/gender', value: 'female' },
      { op: 'add', path: '/telecom/-', value: { system: 'email', value: 'peter@example.org' } },
      { op: 'remove', path: '/deceasedBoolean' },
    ]);
    expect(lastExchange().status).toBe(200);
    expect(patched.meta?.versionId).toBe('2');
    expect(patched.gender).toBe('female');
    expect(patched.telecom?.at(-1)).toEqual({ system: 'email', value: 'peter@example.org' });
    expect(patched.telecom).toHaveLength((created.telecom?.length ?? 0) + 1);
    expect(patched).not.toHaveProperty('deceasedBoolean');

    const refused = await failure(
      medplum.patchResource('Patient', created.id, [
        { op: 'test', path: '/birthDate', value: '2000-01-01' },
        { op: 'replace', path: '/gender', value: 'male' },
      ]),
    );
    expect(lastExchange().status).toBe(422);
    expect(refused.issue?.[0]?.severity).toBe('error');
    expect(await medplum.readResource('Patient', created.id)).toEqual(patched);
  });

  test('deleteResource removes the resource: a later read fails with 410 Gone and the history keeps the delete', async () => {
    const created = await medplum.createResource(examplePatient().patient);
    await medplum.deleteResource('Patient', created.id);
    expect([200, 204]).toContain(lastExchange().status);

    const gone = await failure(medplum.readResource('Patient', created.id));
    expect(lastExchange().status).toBe(410);
    expect(gone.resourceType).toBe('OperationOutcome');
    expect(gone.issue?.[0]?.severity).toBe('error');

    const history = await medplum.readHistory('Patient', created.id);
    expect(history.type).toBe('history');
    expect(history.entry?.map((e) => e.request?.method)).toEqual(['DELETE', 'POST']);
    expect(history.entry?.[0].resource).toBeUndefined();
    expect(history.entry?.[1].resource?.meta?.versionId).toBe('1');
  });

  test('readHistory lists every version newest first and readVersion returns each as it was', async () => {
    const created = await medplum.createResource(examplePatient().patient);
    const v2 = await medplum.updateResource({ ...created, gender: 'unknown' });
    const v3 = await medplum.patchResource('Patient', created.id, [{ op: 'replace', path: '/active', value: false }]);
    expect(v3.meta?.versionId).toBe('3');

    const history = await medplum.readHistory('Patient', created.id);
    expect(history.resourceType).toBe('Bundle');
    expect(history.type).toBe('history');
    expect(history.entry?.map((e) => e.resource?.meta?.versionId)).toEqual(['3', '2', '1']);
    expect(history.entry?.slice(1).map((e) => e.request?.method)).toEqual(['PUT', 'POST']);
    expect(['PATCH', 'PUT']).toContain(history.entry?.[0].request?.method);
    expect(history.entry?.[2].resource).toEqual(created);

    expect(await medplum.readVersion('Patient', created.id, '1')).toEqual(created);
    expect(await medplum.readVersion('Patient', created.id, '2')).toEqual(v2);
    expect(await medplum.readVersion('Patient', created.id, '3')).toEqual(v3);
    const missing = await failure(medplum.readVersion('Patient', created.id, '4'));
    expect(lastExchange().status).toBe(404);
    expect(missing.issue?.[0]?.code).toBe('not-found');
  });

  test('createResourceIfNoneExist creates once; the second call returns the same resource unchanged', async () => {
    const { patient, identifier } = examplePatient();
    const first = await medplum.createResourceIfNoneExist(patient, `identifier=${identifier}`);
    expect(lastExchange().status).toBe(201);
    const second = await medplum.createResourceIfNoneExist({ ...patient, gender: 'female' }, `identifier=${identifier}`);
    expect(lastExchange().status).toBe(200);
    expect(second.id).toBe(first.id);
    expect(second.meta?.versionId).toBe('1');
    expect(second.gender).toBe('male');
    const matches = await medplum.searchResources('Patient', { identifier });
    expect(matches.map((p) => p.id)).toEqual([first.id]);
  });

  test('upsertResource (conditional update) creates when nothing matches and updates the one match', async () => {
    const { patient, identifier } = examplePatient();
    const created = await medplum.upsertResource(patient, { identifier });
    expect(lastExchange().status).toBe(201);
    expect(created.meta?.versionId).toBe('1');
    const updated = await medplum.upsertResource({ ...patient, gender: 'other' }, { identifier });
    expect(lastExchange().status).toBe(200);
    expect(updated.id).toBe(created.id);
    expect(updated.meta?.versionId).toBe('2');
    expect(updated.gender).toBe('other');
  });
});

describe('search', () => {
  const observationFiles = [
    'Observation-example.json', // body weight, 2016-03-28
    'Observation-body-height.json', // 1999-07-02
    'Observation-body-temperature.json', // 1999-07-02
    'Observation-bmi.json', // 1999-07-02
    'Observation-heart-rate.json', // 1999-07-02
    'Observation-blood-pressure.json', // 2012-09-17
  ];
  let patient: Patient & { id: string };
  let identifier: string;
  let observations: (Observation & { id: string })[];

  beforeAll(async () => {
    const source = examplePatient();
    identifier = source.identifier;
    patient = await medplum.createResource(source.patient);
    observations = [];
    for (const file of observationFiles) {
      const observation = example<Observation>(file);
      observations.push(await medplum.createResource({ ...observation, subject: { reference: `Patient/${patient.id}` } }));
    }
  });

  function idsOf(files: string[]): string[] {
    return files.map((f) => observations[observationFiles.indexOf(f)].id).sort();
  }

  test('search by string (prefix, case-insensitive) and token finds the patient; :exact is case-sensitive', async () => {
    const bundle = await medplum.search('Patient', { name: 'chalm', identifier });
    expect(bundle.type).toBe('searchset');
    expect(bundle.entry?.map((e) => e.resource?.id)).toEqual([patient.id]);
    expect(bundle.entry?.[0].search?.mode).toBe('match');
    expect(bundle.entry?.[0].fullUrl).toBe(`${server.base}/Patient/${patient.id}`);
    expect(await medplum.searchResources('Patient', { family: 'Windsor', identifier })).toHaveLength(1);
    expect(await medplum.searchResources('Patient', { 'family:exact': 'chalmers', identifier })).toHaveLength(0);
    expect(await medplum.searchResources('Patient', { 'family:exact': 'Chalmers', identifier })).toHaveLength(1);
    expect(await medplum.searchResources('Patient', { name: 'Smith', identifier })).toHaveLength(0);
    expect(await medplum.searchResources('Patient', { gender: 'male', birthdate: '1974-12-25', identifier })).toHaveLength(1);
    expect(await medplum.searchResources('Patient', { gender: 'female', identifier })).toHaveLength(0);
  });

  test('search by reference and token returns exactly the matching observations', async () => {
    const all = await medplum.searchResources('Observation', { subject: `Patient/${patient.id}` });
    expect(all.map((o) => o.id).sort()).toEqual(observations.map((o) => o.id).sort());
    expect((await medplum.searchResources('Observation', { patient: patient.id })).length).toBe(observationFiles.length);
    const height = await medplum.searchResources('Observation', { subject: `Patient/${patient.id}`, code: 'http://loinc.org|8302-2' });
    expect(height.map((o) => o.id)).toEqual(idsOf(['Observation-body-height.json']));
    const twoCodes = await medplum.searchResources('Observation', { subject: `Patient/${patient.id}`, code: 'http://loinc.org|8302-2,http://loinc.org|8867-4' });
    expect(twoCodes.map((o) => o.id).sort()).toEqual(idsOf(['Observation-body-height.json', 'Observation-heart-rate.json']));
    expect(await medplum.searchResources('Observation', { subject: `Patient/${patient.id}`, code: 'http://snomed.info/sct|8302-2' })).toHaveLength(0);
  });

  test('date prefixes ge, lt, eq and a range select by effective date', async () => {
    const subject = `Patient/${patient.id}`;
    const ids = async (query: [string, string][]): Promise<string[]> =>
      (await medplum.searchResources('Observation', [['subject', subject], ...query])).map((o) => o.id).sort();
    const from1999 = ['Observation-body-height.json', 'Observation-body-temperature.json', 'Observation-bmi.json', 'Observation-heart-rate.json'];
    expect(await ids([['date', 'ge2000-01-01']])).toEqual(idsOf(['Observation-example.json', 'Observation-blood-pressure.json']));
    expect(await ids([['date', 'lt2000-01-01']])).toEqual(idsOf(from1999));
    expect(await ids([['date', 'eq1999-07-02']])).toEqual(idsOf(from1999));
    expect(await ids([['date', '2016-03']])).toEqual(idsOf(['Observation-example.json']));
    expect(await ids([['date', 'gt2000'], ['date', 'lt2015']])).toEqual(idsOf(['Observation-blood-pressure.json']));
  });

  test('_sort orders by date either way and _count limits the page, with a next link', async () => {
    const newestFirst = await medplum.searchResources('Observation', { subject: `Patient/${patient.id}`, _sort: '-date' });
    const dates = newestFirst.map((o) => o.effectiveDateTime as string);
    expect(dates[0]).toBe('2016-03-28');
    expect(dates[1]).toBe('2012-09-17');
    expect([...dates].sort().reverse()).toEqual(dates);
    const oldestFirst = await medplum.searchResources('Observation', { subject: `Patient/${patient.id}`, _sort: 'date' });
    expect(oldestFirst.map((o) => o.effectiveDateTime)).toEqual([...dates].reverse());

    const page = await medplum.search('Observation', { subject: `Patient/${patient.id}`, _count: '2', _sort: '-date' });
    expect(page.entry?.map((e) => e.resource?.id)).toEqual(newestFirst.slice(0, 2).map((o) => o.id));
    expect(page.link?.find((l) => l.relation === 'next')?.url).toBeDefined();
    expect(page.link?.find((l) => l.relation === 'self')?.url).toBeDefined();
  });

  test('searchOne returns the single match, or undefined when nothing matches', async () => {
    const bmi = await medplum.searchOne('Observation', { subject: `Patient/${patient.id}`, code: 'http://loinc.org|39156-5' });
    expect(bmi?.id).toEqual(idsOf(['Observation-bmi.json'])[0]);
    expect(bmi?.valueQuantity).toEqual({ value: 16.2, unit: 'kg/m2', system: 'http://unitsofmeasure.org', code: 'kg/m2' });
    expect(await medplum.searchOne('Observation', { subject: `Patient/${patient.id}`, code: 'http://loinc.org|0000-0' })).toBeUndefined();
  });

  test('_include brings the referenced patient into the bundle marked as include, after the match', async () => {
    const query = { subject: `Patient/${patient.id}`, code: 'http://loinc.org|8302-2', _include: 'Observation:subject' };
    const bundle = await medplum.search('Observation', query);
    expect(bundle.entry?.map((e) => [e.resource?.resourceType, e.resource?.id, e.search?.mode])).toEqual([
      ['Observation', idsOf(['Observation-body-height.json'])[0], 'match'],
      ['Patient', patient.id, 'include'],
    ]);
    // searchResources hands back every entry, included ones too (the client ignores search.mode).
    const resources = await medplum.searchResources('Observation', query);
    expect(resources.map((r) => r.resourceType)).toEqual(['Observation', 'Patient']);
    expect(resources.bundle.entry?.filter((e) => e.search?.mode === 'match')).toHaveLength(1);
  });

  test('an unknown parameter is ignored under lenient handling, with an outcome entry and a self link without it', async () => {
    const bundle = await medplum.search('Patient', { identifier, 'no-such-param': 'x' });
    expect(lastExchange().status).toBe(200);
    expect(bundle.entry?.map((e) => [e.resource?.resourceType, e.search?.mode])).toEqual([
      ['Patient', 'match'],
      ['OperationOutcome', 'outcome'],
    ]);
    expect((bundle.entry?.[1].resource as unknown as OperationOutcome).issue?.[0]?.severity).toMatch(/^(warning|information)$/);
    const self = bundle.link?.find((l) => l.relation === 'self')?.url as string;
    expect(self).toContain('identifier=');
    expect(self).not.toContain('no-such-param');
    // searchOne asks for _count=1 and takes the first entry, which is the match.
    expect((await medplum.searchOne('Patient', { identifier, 'no-such-param': 'x' }))?.id).toBe(patient.id);
  });

  test('_summary=count answers only the total, and _elements marks the resources SUBSETTED', async () => {
    const counted = await medplum.search('Observation', { subject: `Patient/${patient.id}`, _summary: 'count' });
    expect(counted.total).toBe(observationFiles.length);
    expect(counted.entry ?? []).toEqual([]);
    const subset = await medplum.searchResources('Patient', { identifier, _elements: 'gender' });
    expect(subset).toHaveLength(1);
    expect(subset[0].gender).toBe('male');
    expect(subset[0].name).toBeUndefined();
    expect(subset[0].meta?.tag).toContainEqual(expect.objectContaining({ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' }));
  });

  test('readPatientEverything returns the patient and everything in its compartment', async () => {
    const bundle = await medplum.readPatientEverything(patient.id);
    expect(bundle.resourceType).toBe('Bundle');
    expect(bundle.type).toBe('searchset');
    const refs = (bundle.entry ?? []).map((e) => `${e.resource?.resourceType}/${e.resource?.id}`).sort();
    expect(refs).toEqual([`Patient/${patient.id}`, ...observations.map((o) => `Observation/${o.id}`)].sort());
  });
});

describe('paging', () => {
  const total = 23;
  let family: string;
  let createdIds: string[];

  beforeAll(async () => {
    family = `Pager${randomUUID().slice(0, 8)}`;
    createdIds = [];
    for (let i = 0; i < total; i++) {
      const { patient } = examplePatient();
      const created = await medplum.createResource({ ...patient, name: [{ use: 'official', family, given: [`Peter${i}`] }] });
      createdIds.push(created.id);
    }
  });

  test('searchResourcePages follows the next links to the end: every match once, in pages of _count', async () => {
    const pages: string[][] = [];
    for await (const page of medplum.searchResourcePages('Patient', { family, _count: 5, _sort: '_id' })) {
      pages.push(page.map((p) => p.id));
    }
    expect(pages.map((p) => p.length)).toEqual([5, 5, 5, 5, 3]);
    const ids = pages.flat();
    expect(new Set(ids).size).toBe(total);
    expect([...ids].sort()).toEqual([...createdIds].sort());
    expect(ids).toEqual([...ids].sort());
  });

  test('the next links of search bundles, followed with the client, end after the last match; _total=accurate counts all', async () => {
    let bundle: Bundle<Patient> = await medplum.search('Patient', { family, _count: '10', _total: 'accurate' });
    expect(bundle.total).toBe(total);
    const ids: string[] = (bundle.entry ?? []).map((e) => e.resource?.id as string);
    let pages = 1;
    let next = bundle.link?.find((l) => l.relation === 'next')?.url;
    while (next) {
      expect(next.startsWith(`${server.base}/`)).toBe(true);
      bundle = await medplum.get<Bundle<Patient>>(next);
      pages++;
      ids.push(...(bundle.entry ?? []).map((e) => e.resource?.id as string));
      next = bundle.link?.find((l) => l.relation === 'next')?.url;
      expect(pages).toBeLessThan(10);
    }
    expect(pages).toBe(3);
    expect(new Set(ids).size).toBe(total);
    expect([...ids].sort()).toEqual([...createdIds].sort());
  });

  test('readHistory with a count pages through the versions by its next links', async () => {
    const first = await medplum.readResource('Patient', createdIds[0]);
    await medplum.updateResource({ ...first, gender: 'other' });
    await medplum.updateResource({ ...first, gender: 'unknown' });
    let page: Bundle<Patient> = await medplum.readHistory('Patient', createdIds[0], { count: 1 });
    const versions = [page.entry?.map((e) => e.resource?.meta?.versionId)];
    let next = page.link?.find((l) => l.relation === 'next')?.url;
    while (next && versions.length < 10) {
      page = await medplum.get<Bundle<Patient>>(next);
      versions.push(page.entry?.map((e) => e.resource?.meta?.versionId));
      next = page.link?.find((l) => l.relation === 'next')?.url;
    }
    expect(versions).toEqual([['3'], ['2'], ['1']]);
  });
});

describe('batch and transaction', () => {
  test('executeBatch of a transaction with urn:uuid references creates all entries and rewrites the references', async () => {
    const patientUrn = `urn:uuid:${randomUUID()}`;
    const observationUrn = `urn:uuid:${randomUUID()}`;
    const { patient } = examplePatient();
    const observation = example<Observation>('Observation-body-height.json');
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: observationUrn, resource: { ...observation, subject: { reference: patientUrn } }, request: { method: 'POST', url: 'Observation' } },
        { fullUrl: patientUrn, resource: patient, request: { method: 'POST', url: 'Patient' } },
        {
          fullUrl: `urn:uuid:${randomUUID()}`,
          resource: { ...example<Observation>('Observation-bmi.json'), subject: { reference: patientUrn }, derivedFrom: [{ reference: observationUrn }] },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    };
    const response = await medplum.executeBatch(bundle);
    expect(lastExchange().status).toBe(200);
    expect(response.resourceType).toBe('Bundle');
    expect(response.type).toBe('transaction-response');
    expect(response.entry).toHaveLength(3);
    for (const entry of response.entry ?? []) {
      expect(entry.response?.status).toMatch(/^201/);
      expect(entry.response?.location).toMatch(/^(Observation|Patient)\/[A-Za-z0-9\-.]+\/_history\/1$|\/fhir\/(Observation|Patient)\/[A-Za-z0-9\-.]+\/_history\/1$/);
    }
    const [heightLocation, patientLocation, bmiLocation] = (response.entry ?? []).map((e) => e.response?.location as string);
    const patientId = patientLocation.match(/Patient\/([^/]+)\/_history/)?.[1] as string;
    const heightId = heightLocation.match(/Observation\/([^/]+)\/_history/)?.[1] as string;
    const bmiId = bmiLocation.match(/Observation\/([^/]+)\/_history/)?.[1] as string;
    const height = await medplum.readResource('Observation', heightId);
    const bmi = await medplum.readResource('Observation', bmiId);
    expect(height.subject?.reference).toBe(`Patient/${patientId}`);
    expect(bmi.subject?.reference).toBe(`Patient/${patientId}`);
    expect(bmi.derivedFrom?.[0].reference).toBe(`Observation/${heightId}`);
    expect((await medplum.readResource('Patient', patientId)).name).toEqual(patient.name);
  });

  test('a transaction with an invalid entry fails as a whole and creates nothing', async () => {
    const { patient, identifier } = examplePatient();
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: patient, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', gender: 'not-a-gender' } as unknown as Patient, request: { method: 'POST', url: 'Patient' } },
      ],
    };
    const outcome = await failure(medplum.executeBatch(bundle));
    expect(lastExchange().status).toBe(400);
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(await medplum.searchResources('Patient', { identifier })).toHaveLength(0);
  });

  test('executeBatch of a batch answers each entry on its own, a failure alongside successes', async () => {
    const created = await medplum.createResource(examplePatient().patient);
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { request: { method: 'GET', url: `Patient/${created.id}` } },
        { request: { method: 'GET', url: 'Patient/no-such-patient' } },
        { request: { method: 'GET', url: `Patient?_id=${created.id}` } },
      ],
    };
    const response = await medplum.executeBatch(bundle);
    expect(response.type).toBe('batch-response');
    expect(response.entry?.map((e) => e.response?.status.slice(0, 3))).toEqual(['200', '404', '200']);
    expect(response.entry?.[0].resource).toEqual(created);
    expect(response.entry?.[1].response?.outcome?.resourceType).toBe('OperationOutcome');
    expect((response.entry?.[2].resource as Bundle).entry?.[0].resource?.id).toBe(created.id);
  });
});

describe('operations', () => {
  test('validateResource ($validate) reports no errors for the HL7 example and the error with its path for an invalid one', async () => {
    const valid = await medplum.validateResource(example<Patient>('Patient-example.json'));
    expect(lastExchange().status).toBe(200);
    expect(valid.resourceType).toBe('OperationOutcome');
    expect(valid.issue?.filter((i) => i.severity === 'error' || i.severity === 'fatal') ?? []).toEqual([]);

    const invalid = await medplum.validateResource({ ...example<Patient>('Patient-example.json'), gender: 'bogus' as Patient['gender'] });
    expect(lastExchange().status).toBe(200);
    const errors = invalid.issue?.filter((i) => i.severity === 'error') ?? [];
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.some((i) => [...(i.expression ?? []), ...(i.location ?? [])].some((p) => p.includes('gender')))).toBe(true);
  });

  test('valueSetExpand expands administrative-gender, also with a filter', async () => {
    const url = 'http://hl7.org/fhir/ValueSet/administrative-gender';
    const expanded: ValueSet = await medplum.valueSetExpand({ url });
    expect(expanded.resourceType).toBe('ValueSet');
    expect(expanded.expansion?.timestamp).toBeDefined();
    const contains = expanded.expansion?.contains ?? [];
    expect(contains.map((c) => c.code).sort()).toEqual(['female', 'male', 'other', 'unknown']);
    expect(new Set(contains.map((c) => c.system))).toEqual(new Set(['http://hl7.org/fhir/administrative-gender']));

    const filtered = await medplum.valueSetExpand({ url, filter: 'fem' });
    expect(filtered.expansion?.contains?.map((c) => c.code)).toEqual(['female']);
  });
});

describe('errors', () => {
  test('reading a resource that does not exist fails with 404 and an OperationOutcome saying not-found', async () => {
    const outcome = await failure(medplum.readResource('Patient', 'no-such-patient'));
    expect(lastExchange().status).toBe(404);
    expect(lastExchange().headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue?.[0]).toMatchObject({ severity: 'error', code: 'not-found' });
  });

  test('creating an invalid resource fails with 400 and the OperationOutcome names the element', async () => {
    const invalid = { ...example<Patient>('Patient-example.json'), gender: 'bogus', birthDate: 'not-a-date' } as unknown as Patient;
    const outcome = await failure(medplum.createResource(invalid));
    expect(lastExchange().status).toBe(400);
    expect(outcome.resourceType).toBe('OperationOutcome');
    const errors = outcome.issue?.filter((i) => i.severity === 'error') ?? [];
    expect(errors.length).toBeGreaterThanOrEqual(2);
    const paths = errors.flatMap((i) => [...(i.expression ?? []), ...(i.location ?? [])]).join(' ');
    expect(paths).toContain('gender');
    expect(paths).toContain('birthDate');
  });

  test('an unknown search parameter is reported, not silently ignored, under Prefer: handling=strict', async () => {
    const outcome = await failure(medplum.search('Patient', { 'no-such-param': 'x' }, { headers: { Prefer: 'handling=strict' } }));
    expect(lastExchange().status).toBe(400);
    expect(outcome.issue?.[0]?.severity).toBe('error');
  });
});
