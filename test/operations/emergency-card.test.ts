import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { Resource } from '@medplum/fhirtypes';
import { compactVerify, importJWK } from 'jose';
import { JWK, JWS } from 'node-jose';
import { createHealthCardKey } from '../../server/auth/health-card-key';
import { BLOOD_GROUP_CODES } from '../../server/operations/critical-summary';
import { healthCardBundle } from '../../server/operations/health-card-bundle';
import { healthCardQrs, numericEncoding } from '../../server/operations/health-card-qr';
import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { informationFiles, readSyntheaBundle, smallestPatientFiles, type SyntheaBundle } from '../support/synthea-bundles';
import { startTestServer, type TestServer } from '../support/test-server';

type Json = Record<string, any>;

const ACTIVE_CLINICAL = new Set(['active', 'recurrence', 'relapse']);
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const codes = (concept: Json | undefined): string[] => (concept?.coding ?? []).map((c: Json) => `${c.system}|${c.code}`);
const sorted = (values: Iterable<string>): string[] => [...new Set(values)].sort();

/** Every `reference` string anywhere in a JSON tree. */
function referencesIn(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((n) => referencesIn(n, found));
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'reference' && typeof value === 'string') found.push(value);
      else referencesIn(value, found);
    }
  }
  return found;
}

/** Every object anywhere in a JSON tree that has `key`. */
function objectsWith(node: unknown, key: string, found: Json[] = []): Json[] {
  if (Array.isArray(node)) node.forEach((n) => objectsWith(n, key, found));
  else if (node && typeof node === 'object') {
    if (key in node) found.push(node as Json);
    Object.values(node).forEach((v) => objectsWith(v, key, found));
  }
  return found;
}

/** The JWS back from the QR contents: the `shc:/` (and `i/n/`) prefix off, each digit pair + 45 a character. */
function decodeQrs(contents: string[]): string {
  const chunks = contents.map((content) => {
    const match = /^shc:\/(?:(\d+)\/(\d+)\/)?(\d+)$/.exec(content);
    if (!match) throw new Error(`not a SMART Health Card QR: ${content.slice(0, 40)}`);
    return { index: Number(match[1] ?? 1), count: Number(match[2] ?? 1), digits: match[3] };
  });
  expect(chunks.every((c) => c.count === chunks.length)).toBe(true);
  return chunks
    .sort((a, b) => a.index - b.index)
    .map(({ digits }) => (digits.match(/\d\d/g) ?? []).map((pair) => String.fromCharCode(Number(pair) + 45)).join(''))
    .join('');
}

/** RFC 7638, computed here rather than by the library under test. */
function thumbprint(jwk: Json): string {
  return createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest('base64url');
}

/** The facts the card must carry, from the bundle file alone. */
function expectedFacts(bundle: SyntheaBundle) {
  const resources = bundle.entry.map((e) => e.resource);
  const byFullUrl = new Map(bundle.entry.map((e) => [e.fullUrl, e.resource]));
  const patient = resources.find((r) => r.resourceType === 'Patient') as Json;
  const ofType = (type: string) => resources.filter((r) => r.resourceType === type);
  const activeRequests = ofType('MedicationRequest').filter((r) => r.status === 'active');
  return {
    family: patient.name[0].family as string,
    given: patient.name[0].given as string[],
    birthDate: patient.birthDate as string,
    allergies: sorted(ofType('AllergyIntolerance').flatMap((r) => codes(r.code))),
    conditions: sorted(ofType('Condition').filter((r) => codes(r.clinicalStatus).some((c) => ACTIVE_CLINICAL.has(c.split('|')[1]))).flatMap((r) => codes(r.code))),
    medications: sorted(activeRequests.flatMap((r) => codes(r.medicationCodeableConcept ?? byFullUrl.get(r.medicationReference?.reference)?.code))),
  };
}

/** The smallest Synthea bundle with an allergy, an active condition and an active MedicationRequest naming a Medication resource. */
function richestSmallFile(): string {
  for (const file of smallestPatientFiles(1000)) {
    const resources = readSyntheaBundle(file).entry.map((e) => e.resource);
    const has = (test: (r: Json) => boolean) => resources.some(test);
    if (
      has((r) => r.resourceType === 'AllergyIntolerance') &&
      has((r) => r.resourceType === 'Condition' && ACTIVE_CLINICAL.has(r.clinicalStatus?.coding?.[0]?.code)) &&
      has((r) => r.resourceType === 'MedicationRequest' && r.status === 'active' && r.medicationReference)
    ) {
      return file;
    }
  }
  throw new Error('no Synthea bundle with allergies, active conditions and active medications');
}

describe('GET Patient/[id]/$emergency-card over HTTP', () => {
  let server: TestServer;
  let admin: string;
  let file: string;
  let patientId: string;
  let otherPatientId: string;

  const call = (token: string, path: string, headers: Record<string, string> = {}) =>
    fhirRequest('GET', `${server.base}${path}`, { headers: { Authorization: `Bearer ${token}`, ...headers } });
  const post = async (path: string, body: unknown): Promise<Json> => {
    const res = await fhirRequest('POST', `${server.base}${path}`, { body, headers: { Authorization: `Bearer ${admin}` } });
    expect([200, 201]).toContain(res.status);
    return res.body;
  };
  /** Loads a bundle file as a client would and returns the id the server gave its Patient. */
  const load = async (name: string): Promise<string> => {
    const bundle = readSyntheaBundle(name);
    const response = await post('', bundle);
    const index = bundle.entry.findIndex((e) => e.resource.resourceType === 'Patient');
    return /Patient\/([^/]+)/.exec(response.entry[index].response.location)?.[1] as string;
  };
  const patientToken = (id: string) => mintToken(server, { scope: 'patient/*.rs', userId: `u-${id}`, fhirUser: `Patient/${id}`, role: 'patient', patient: id });
  const card = async (id: string, token = admin): Promise<Json> => {
    const res = await call(token, `/Patient/${id}/$emergency-card`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    return res.body;
  };
  const valuesOf = (parameters: Json, name: string): Json[] => parameters.parameter.filter((p: Json) => p.name === name);

  /** Verifies the JWS against the keys published at /.well-known/jwks.json and returns header and inflated payload. */
  const verify = async (jws: string): Promise<{ header: Json; payload: Json }> => {
    const jwks = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: Json[] };
    const keystore = await JWK.asKeyStore(jwks);
    const result = await JWS.createVerify(keystore, { algorithms: ['ES256'] }).verify(jws);
    return { header: result.header as Json, payload: JSON.parse(inflateRawSync(result.payload).toString('utf8')) };
  };

  beforeAll(async () => {
    server = await startTestServer({ AUTH_REQUIRED: 'true' });
    admin = await mintToken(server, { scope: 'system/*.*' });
    for (const information of informationFiles()) await post('', readSyntheaBundle(information));
    file = richestSmallFile();
    patientId = await load(file);
    otherPatientId = await load(smallestPatientFiles(1)[0]);
  }, 180000);

  afterAll(async () => {
    await server?.stop();
  });

  it('publishes the issuer key as SMART Health Cards require, to any origin, and not among the OAuth token keys', async () => {
    const res = await fetch(`${server.url}/.well-known/jwks.json`, { headers: { Origin: 'https://verifier.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const { keys } = (await res.json()) as { keys: Json[] };
    expect(keys).toHaveLength(1);
    // crlVersion: the counter of the key's revocation list (its SMART Health Cards' revocation, health-cards-issue.test.ts).
    expect(keys[0]).toEqual({ kty: 'EC', kid: thumbprint(keys[0]), use: 'sig', alg: 'ES256', crv: 'P-256', x: expect.any(String), y: expect.any(String), crlVersion: 1 });
    const oauth = (await (await fetch(`${server.url}/auth/jwks`)).json()) as { keys: Json[] };
    expect(oauth.keys).not.toContainEqual(keys[0]);
    expect(oauth.keys.every((k) => k.kty === 'RSA')).toBe(true);
  });

  it('signs a card that verifies against the published key and holds the facts of the bundle file', async () => {
    const parameters = await card(patientId);
    expect(parameters.resourceType).toBe('Parameters');
    const [credential] = valuesOf(parameters, 'verifiableCredential');
    const jws = credential.valueString as string;
    const { header, payload } = await verify(jws);
    const { keys } = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: Json[] };
    expect(header).toEqual({ alg: 'ES256', zip: 'DEF', kid: keys[0].kid });
    // A second, independent JOSE implementation agrees (verifiers use all sorts).
    const independent = await compactVerify(jws, await importJWK(keys[0], 'ES256'), { algorithms: ['ES256'] });
    expect(JSON.parse(inflateRawSync(Buffer.from(independent.payload)).toString('utf8'))).toEqual(payload);

    expect(payload.iss).toBe(server.url);
    expect(Math.abs(payload.nbf - Date.now() / 1000)).toBeLessThan(300);
    expect(payload.vc.type).toEqual(['https://smarthealth.cards#health-card']);
    expect(payload.vc.credentialSubject.fhirVersion).toBe('4.0.1');

    const bundle = payload.vc.credentialSubject.fhirBundle;
    const entries = bundle.entry as { fullUrl: string; resource: Json }[];
    expect(bundle.type).toBe('collection');
    expect(entries.map((e) => e.fullUrl)).toEqual(entries.map((_, i) => `resource:${i}`));
    const ofType = (type: string) => entries.filter((e) => e.resource.resourceType === type).map((e) => e.resource);

    const expected = expectedFacts(readSyntheaBundle(file));
    const patient = entries[0].resource;
    expect(patient.resourceType).toBe('Patient');
    expect(patient.name[0].family).toBe(expected.family);
    expect(patient.name[0].given).toEqual(expected.given);
    expect(patient.birthDate).toBe(expected.birthDate);
    expect(sorted(ofType('AllergyIntolerance').flatMap((r) => codes(r.code)))).toEqual(expected.allergies);
    expect(sorted(ofType('Condition').flatMap((r) => codes(r.code)))).toEqual(expected.conditions);
    const resolve = (reference: string): Json => entries[Number(reference.slice('resource:'.length))].resource;
    const medicationCodes = ofType('MedicationRequest').flatMap((r) => codes(r.medicationCodeableConcept ?? resolve(r.medicationReference.reference).code));
    expect(sorted(medicationCodes)).toEqual(expected.medications);
    expect(expected.allergies.length * expected.conditions.length * expected.medications.length).toBeGreaterThan(0);

    // Minified as the spec asks of QR cards, and vital signs left off.
    for (const { resource } of entries) {
      expect(resource.id).toBeUndefined();
      expect(resource.text).toBeUndefined();
      expect(resource.meta).toBeUndefined();
    }
    for (const reference of referencesIn(bundle)) {
      expect(reference).toMatch(/^resource:\d+$/);
      expect(Number(reference.slice('resource:'.length))).toBeLessThan(entries.length);
    }
    expect(objectsWith(bundle, 'coding').flatMap((c) => c.coding).filter((c: Json) => 'display' in c)).toEqual([]);
    expect(ofType('Observation').filter((o) => !codes(o.code).some((c) => BLOOD_GROUP_CODES.includes(c)))).toEqual([]);
    expect(JSON.stringify(bundle)).not.toContain(patientId);

    // A changed payload no longer verifies.
    const [h, p, s] = jws.split('.');
    const changed = inflateRawSync(Buffer.from(p, 'base64url')).toString('utf8').replace(expected.family, 'Forged');
    const forged = `${h}.${deflateRawSync(Buffer.from(changed)).toString('base64url')}.${s}`;
    await expect(verify(forged)).rejects.toThrow();
  });

  it('gives the QR contents that decode back to the JWS, and a PNG image of each', async () => {
    const parameters = await card(patientId);
    const jws = valuesOf(parameters, 'verifiableCredential')[0].valueString as string;
    const numeric = valuesOf(parameters, 'qrNumeric').map((p) => p.valueString as string);
    const images = valuesOf(parameters, 'qrImage').map((p) => p.valueAttachment);
    expect(numeric.length).toBe(jws.length > 1195 ? Math.ceil(jws.length / 1191) : 1);
    // A compact JWS starts with 'e' (eyJ…): 'e' is 101, 101 - 45 = 56.
    if (numeric.length === 1) expect(numeric[0].startsWith('shc:/56')).toBe(true);
    expect(decodeQrs(numeric)).toBe(jws);
    expect(images).toHaveLength(numeric.length);
    for (const image of images) {
      expect(image.contentType).toBe('image/png');
      expect(Buffer.from(image.data, 'base64').subarray(0, 8)).toEqual(PNG_MAGIC);
    }
    expect(parameters.parameter.map((p: Json) => p.name)).not.toContain('resourceLink');
  });

  it('answers Accept: application/smart-health-card with the .smart-health-card file', async () => {
    const res = await call(admin, `/Patient/${patientId}/$emergency-card`, { Accept: 'application/smart-health-card' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/smart-health-card/);
    expect(Object.keys(res.body)).toEqual(['verifiableCredential']);
    expect(res.body.verifiableCredential).toHaveLength(1);
    const { payload } = await verify(res.body.verifiableCredential[0]);
    expect(payload.vc.credentialSubject.fhirBundle.entry[0].resource.birthDate).toBe(expectedFacts(readSyntheaBundle(file)).birthDate);
  });

  it('lets a patient fetch their own card and no other patient\'s', async () => {
    const own = await card(patientId, await patientToken(patientId));
    const { payload } = await verify(valuesOf(own, 'verifiableCredential')[0].valueString);
    expect(payload.vc.credentialSubject.fhirBundle.entry[0].resource.name[0].family).toBe(expectedFacts(readSyntheaBundle(file)).family);

    const other = await call(await patientToken(otherPatientId), `/Patient/${patientId}/$emergency-card`);
    expect([403, 404]).toContain(other.status);
    expect(other.body.resourceType).toBe('OperationOutcome');
    expect(other.text).not.toContain('verifiableCredential');
  });

  it('lets a practitioner of a hospital the patient was treated at fetch the card, and not one of another hospital', async () => {
    const encounters = (await call(admin, `/Encounter?patient=${patientId}&_count=1`)).body;
    const hospital = encounters.entry[0].resource.serviceProvider.reference as string;
    const practitionerAt = async (organization: string): Promise<string> => {
      const practitioner = await post('/Practitioner', { resourceType: 'Practitioner', name: [{ family: 'Card' }] });
      await post('/PractitionerRole', { resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${practitioner.id}` }, organization: { reference: organization } });
      return mintToken(server, { scope: 'user/*.rs', userId: `u-${practitioner.id}`, fhirUser: `Practitioner/${practitioner.id}`, role: 'practitioner' });
    };
    const elsewhere = await post('/Organization', { resourceType: 'Organization', name: 'Elsewhere Hospital' });
    expect((await call(await practitionerAt(hospital), `/Patient/${patientId}/$emergency-card`)).status).toBe(200);
    expect((await call(await practitionerAt(`Organization/${elsewhere.id}`), `/Patient/${patientId}/$emergency-card`)).status).toBe(403);
  });

  it('answers 404 for an unknown patient and 410 for a deleted one', async () => {
    expect((await call(admin, '/Patient/no-such-patient/$emergency-card')).status).toBe(404);
    const gone = await post('/Patient', { resourceType: 'Patient', name: [{ family: 'Gone' }] });
    const deleted = await fhirRequest('DELETE', `${server.base}/Patient/${gone.id}`, { headers: { Authorization: `Bearer ${admin}` } });
    expect([200, 204]).toContain(deleted.status);
    expect((await call(admin, `/Patient/${gone.id}/$emergency-card`)).status).toBe(410);
  });
});

describe('the issuer key', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  }, 60000);

  afterAll(async () => {
    await server?.stop();
  });

  it('is created once however many processes need it at the same moment, and kept', async () => {
    // Each createHealthCardKey is what a separate server process holds: its own cache, one database.
    const processes = Array.from({ length: 6 }, () => createHealthCardKey(server.server.knex));
    const published = await Promise.all(processes.map((p) => p.publicJwks()));
    const kids = published.map((jwks) => jwks.keys.map((k) => k.kid));
    expect(new Set(kids.map((k) => k.join()))).toEqual(new Set([kids[0].join()]));
    expect(kids[0]).toHaveLength(1);
    expect(await server.server.knex('health_card_key').select('kid')).toEqual([{ kid: kids[0][0] }]);
    const signed = await Promise.all(processes.map((p) => p.sign(deflateRawSync(Buffer.from('{}')))));
    expect(new Set(signed.map((jws) => JSON.parse(Buffer.from(jws.split('.')[0], 'base64url').toString()).kid))).toEqual(new Set(kids[0]));
  });
});

describe('the card bundle', () => {
  const baseUrl = 'https://fhir.example/fhir';
  const resources = [
    {
      resourceType: 'Patient',
      id: 'p1',
      meta: { versionId: '3', lastUpdated: '2026-01-01T00:00:00Z', security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R', display: 'restricted' }] },
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Ann</div>' },
      extension: [{ url: 'http://example.org/race', valueString: 'x' }],
      telecom: [{ system: 'phone', value: '555' }],
      name: [{ family: 'Smith', given: ['Ann'] }],
      birthDate: '1970-01-01',
      contact: [{ name: { family: 'Smith', given: ['Bob'] }, telecom: [{ system: 'phone', value: '556' }] }],
    },
    {
      resourceType: 'MedicationRequest',
      id: 'mr1',
      meta: { profile: ['http://example.org/profile'] },
      status: 'active',
      intent: 'order',
      medicationReference: { reference: `${baseUrl}/Medication/m1/_history/2` },
      subject: { reference: 'Patient/p1' },
      encounter: { reference: 'Encounter/e1' },
      requester: { reference: 'Practitioner/dr1', display: 'Dr. Who' },
      reasonReference: [{ reference: 'Condition/c-not-on-card' }, { reference: 'Condition/c1' }],
      dosageInstruction: [{ text: 'Take as needed.' }],
    },
    { resourceType: 'Medication', id: 'm1', code: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '123', display: 'Aspirin' }], text: 'Aspirin' } },
    {
      resourceType: 'Condition',
      id: 'c1',
      subject: { reference: 'Patient/p1' },
      code: { coding: [{ system: 'http://snomed.info/sct', code: '44054006', display: 'Diabetes' }], text: 'Diabetes' },
      note: [{ text: 'free text stays' }],
    },
    { resourceType: 'AllergyIntolerance', id: 'a1', patient: { reference: 'Patient/p1' }, code: { text: 'grandmother\'s jam' } },
  ] as Resource[];

  it('rewrites the references between its entries to resource:N and drops the others but their display', () => {
    const bundle = healthCardBundle(resources, baseUrl) as Json;
    expect(bundle.entry.map((e: Json) => e.fullUrl)).toEqual(['resource:0', 'resource:1', 'resource:2', 'resource:3', 'resource:4']);
    const request = bundle.entry[1].resource;
    expect(request).toEqual({
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'order',
      medicationReference: { reference: 'resource:2' },
      subject: { reference: 'resource:0' },
      requester: { display: 'Dr. Who' },
      reasonReference: [{ reference: 'resource:3' }],
      dosageInstruction: [{ text: 'Take as needed.' }],
    });
    expect(bundle.entry[3].resource.subject).toEqual({ reference: 'resource:0' });
    expect(bundle.entry[4].resource.patient).toEqual({ reference: 'resource:0' });
  });

  it('keeps of the Patient its identity and contacts, and meta only for its security labels', () => {
    const patient = (healthCardBundle(resources, baseUrl) as Json).entry[0].resource;
    expect(patient).toEqual({
      resourceType: 'Patient',
      name: [{ family: 'Smith', given: ['Ann'] }],
      birthDate: '1970-01-01',
      contact: [{ name: { family: 'Smith', given: ['Bob'] }, telecom: [{ system: 'phone', value: '556' }] }],
    });
    const labelled = (healthCardBundle([{ ...resources[3], meta: resources[0].meta } as Resource], baseUrl) as Json).entry[0].resource;
    expect(labelled.meta).toEqual({ security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] });
  });

  it('drops Coding.display, and CodeableConcept.text where a coding says it', () => {
    const bundle = healthCardBundle(resources, baseUrl) as Json;
    expect(bundle.entry[2].resource.code).toEqual({ coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '123' }] });
    expect(bundle.entry[3].resource.code).toEqual({ coding: [{ system: 'http://snomed.info/sct', code: '44054006' }] });
    expect(bundle.entry[3].resource.note).toEqual([{ text: 'free text stays' }]);
    expect(bundle.entry[4].resource.code).toEqual({ text: 'grandmother\'s jam' });
  });
});

describe('the card QR codes', () => {
  const fakeJws = (length: number): string => Array.from({ length }, (_, i) => 'abcXYZ012-_.'[i % 12]).join('');

  it('encode each character as two digits of its code minus 45', () => {
    expect(numericEncoding('-X.z')).toBe('00430177');
  });

  it('fit a JWS of up to 1195 characters in one QR, and split a longer one into balanced chunks', async () => {
    const single = await healthCardQrs(fakeJws(1195));
    expect(single).toHaveLength(1);
    expect(single[0].numeric).toMatch(/^shc:\/\d+$/);
    const jws = fakeJws(1200);
    const chunks = await healthCardQrs(jws);
    expect(chunks.map((q) => /^shc:\/\d\/\d\//.exec(q.numeric)?.[0])).toEqual(['shc:/1/2/', 'shc:/2/2/']);
    expect(chunks.map((q) => q.numeric.length - 'shc:/1/2/'.length)).toEqual([1200, 1200]);
    expect(decodeQrs(chunks.map((q) => q.numeric))).toBe(jws);
    for (const chunk of chunks) expect(chunk.png.subarray(0, 8)).toEqual(PNG_MAGIC);
  });
});
