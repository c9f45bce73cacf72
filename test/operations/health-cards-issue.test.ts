import { createHash } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { JWK, JWS } from 'node-jose';
import { revokeHealthCards, rotateHealthCardKeyCommand } from '../../scripts/cli/health-card';
import { healthCardKeyFor } from '../../server/auth/health-card-key';
import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

type Json = Record<string, any>;

/**
 * POST Patient/[id]/$health-cards-issue (SMART Health Cards and Links IG): a wallet asks
 * for the patient's immunization or laboratory cards and gets signed JWS it can verify
 * against the issuer's published keys, each bundled resource linked to the one hosted here.
 */
let server: TestServer;
let admin: string;
const ids: Record<string, string> = {};
const CVX = 'http://hl7.org/fhir/sid/cvx';
const COVID_VACCINES = 'https://example.org/fhir/ValueSet/covid-vaccines';

const create = async (resource: Json): Promise<string> => {
  const res = await fhirRequest('POST', `${server.base}/${resource.resourceType}`, { body: resource, headers: { Authorization: `Bearer ${admin}` } });
  expect(res.status).toBe(201);
  return res.body.id;
};

const immunization = (patient: string, code: string, date: string, status = 'completed'): Json => ({
  resourceType: 'Immunization',
  status,
  vaccineCode: { coding: [{ system: CVX, code, display: `CVX ${code}` }], text: `vaccine ${code}` },
  patient: { reference: `Patient/${patient}` },
  occurrenceDateTime: date,
  lotNumber: `LOT-${code}`,
});

const observation = (patient: string, category: string, status: string, date: string): Json => ({
  resourceType: 'Observation',
  status,
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: category }] }],
  code: { coding: [{ system: 'http://loinc.org', code: category === 'laboratory' ? '94500-6' : '8867-4' }] },
  subject: { reference: `Patient/${patient}` },
  effectiveDateTime: date,
  valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '260385009' }] },
});

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  admin = await mintToken(server, { scope: 'system/*.*' });
  ids.patient = await create({
    resourceType: 'Patient',
    name: [{ family: 'Anyperson', given: ['John', 'B.'] }],
    birthDate: '1951-01-20',
    gender: 'male',
    identifier: [{ system: 'https://example.org/mrn', value: 'M-1' }],
    address: [{ city: 'Lyon' }],
  });
  ids.other = await create({ resourceType: 'Patient', name: [{ family: 'Other' }] });
  ids.empty = await create({ resourceType: 'Patient', name: [{ family: 'Nobody' }] });
  ids.flu = await create(immunization(ids.patient, '140', '2019-10-01'));
  ids.covid = await create(immunization(ids.patient, '208', '2021-01-10'));
  ids.errored = await create(immunization(ids.patient, '207', '2021-02-01', 'entered-in-error'));
  ids.othersShot = await create(immunization(ids.other, '208', '2021-01-10'));
  ids.lab = await create(observation(ids.patient, 'laboratory', 'final', '2021-02-03'));
  ids.preliminary = await create(observation(ids.patient, 'laboratory', 'preliminary', '2021-02-04'));
  ids.vital = await create(observation(ids.patient, 'vital-signs', 'final', '2021-02-05'));
  await create({ resourceType: 'ValueSet', url: COVID_VACCINES, status: 'active', compose: { include: [{ system: CVX, concept: [{ code: '207' }, { code: '208' }] }] } });
}, 60000);

afterAll(async () => {
  await server?.stop();
});

async function issue(patient: string, parameter: Json[], token = admin): Promise<{ status: number; body: Json; headers: Headers }> {
  return fhirRequest('POST', `${server.base}/Patient/${patient}/$health-cards-issue`, { body: { resourceType: 'Parameters', parameter }, headers: { Authorization: `Bearer ${token}` } });
}

const credentials = (body: Json): string[] => (body.parameter ?? []).filter((p: Json) => p.name === 'verifiableCredential').map((p: Json) => p.valueString);

/** Verifies the JWS against the keys published at /.well-known/jwks.json; the header and the inflated payload. */
async function verify(jws: string): Promise<{ header: Json; payload: Json }> {
  const jwks = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: Json[] };
  const result = await JWS.createVerify(await JWK.asKeyStore(jwks), { algorithms: ['ES256'] }).verify(jws);
  const key = jwks.keys.find((k) => k.kid === (result.header as Json).kid) as Json;
  // RFC 7638 thumbprint, computed here.
  expect(createHash('sha256').update(JSON.stringify({ crv: key.crv, kty: key.kty, x: key.x, y: key.y })).digest('base64url')).toBe(key.kid);
  return { header: result.header as Json, payload: JSON.parse(inflateRawSync(result.payload).toString('utf8')) };
}

async function onlyCard(patient: string, parameter: Json[]): Promise<{ body: Json; payload: Json; resources: Json[] }> {
  const res = await issue(patient, parameter);
  expect(res.status).toBe(200);
  expect(res.headers.get('cache-control')).toBe('no-store');
  const [jws, ...more] = credentials(res.body);
  expect(more).toEqual([]);
  const { header, payload } = await verify(jws);
  expect(header).toMatchObject({ alg: 'ES256', zip: 'DEF' });
  expect(payload.iss).toBe(server.url);
  const bundle = payload.vc.credentialSubject.fhirBundle;
  expect(payload.vc.credentialSubject.fhirVersion).toBe('4.0.1');
  expect(bundle.entry.map((e: Json) => e.fullUrl)).toEqual(bundle.entry.map((_: Json, i: number) => `resource:${i}`));
  return { body: res.body, payload, resources: bundle.entry.map((e: Json) => e.resource) };
}

describe('POST Patient/[id]/$health-cards-issue', () => {
  it('issues one immunization card: the patient named by name and birth date, the completed immunizations in date order, minified, each linked to the hosted resource', async () => {
    const { body, payload, resources } = await onlyCard(ids.patient, [{ name: 'credentialType', valueUri: 'Immunization' }]);
    expect(payload.vc.type).toEqual(['https://smarthealth.cards#health-card', 'https://smarthealth.cards#immunization']);
    expect(resources[0]).toEqual({ resourceType: 'Patient', name: [{ family: 'Anyperson', given: ['John', 'B.'] }], birthDate: '1951-01-20' });
    expect(resources.slice(1).map((r) => r.vaccineCode.coding[0].code)).toEqual(['140', '208']);
    for (const shot of resources.slice(1)) {
      expect(shot.patient).toEqual({ reference: 'resource:0' });
      expect(shot).not.toHaveProperty('id');
      expect(shot).not.toHaveProperty('meta');
      expect(shot.vaccineCode).toEqual({ coding: [{ system: CVX, code: shot.vaccineCode.coding[0].code }] });
    }
    const links = body.parameter.filter((p: Json) => p.name === 'resourceLink').map((p: Json) => Object.fromEntries(p.part.map((x: Json) => [x.name, x.valueInteger ?? x.valueUri])));
    expect(links).toEqual([
      { vcIndex: 0, bundledResource: 'resource:0', hostedResource: `${server.base}/Patient/${ids.patient}` },
      { vcIndex: 0, bundledResource: 'resource:1', hostedResource: `${server.base}/Immunization/${ids.flu}` },
      { vcIndex: 0, bundledResource: 'resource:2', hostedResource: `${server.base}/Immunization/${ids.covid}` },
    ]);
  });

  it('reads the first release\'s #immunization as Immunization, and narrows by value set (AND), by _since and by identity claims', async () => {
    const legacy = await onlyCard(ids.patient, [{ name: 'credentialType', valueUri: 'https://smarthealth.cards#immunization' }]);
    expect(legacy.resources.slice(1).map((r) => r.vaccineCode.coding[0].code)).toEqual(['140', '208']);
    const covid = await onlyCard(ids.patient, [
      { name: 'credentialType', valueUri: 'Immunization' },
      { name: 'credentialValueSet', valueUri: COVID_VACCINES },
    ]);
    expect(covid.resources.slice(1).map((r) => r.vaccineCode.coding[0].code)).toEqual(['208']);
    const recent = await onlyCard(ids.patient, [
      { name: 'credentialType', valueUri: 'Immunization' },
      { name: '_since', valueDateTime: '2020-06' },
    ]);
    expect(recent.resources.slice(1).map((r) => r.vaccineCode.coding[0].code)).toEqual(['208']);
    const named = await onlyCard(ids.patient, [
      { name: 'credentialType', valueUri: 'Immunization' },
      { name: 'includeIdentityClaim', valueString: 'Patient.name' },
    ]);
    expect(named.resources[0]).toEqual({ resourceType: 'Patient', name: [{ family: 'Anyperson', given: ['John', 'B.'] }] });
  });

  it('issues a laboratory card of the final laboratory results only', async () => {
    const { payload, resources } = await onlyCard(ids.patient, [{ name: 'credentialType', valueUri: 'Observation' }]);
    expect(payload.vc.type).toEqual(['https://smarthealth.cards#health-card', 'https://smarthealth.cards#laboratory']);
    expect(resources.map((r) => r.resourceType)).toEqual(['Patient', 'Observation']);
    expect(resources[1]).toMatchObject({ status: 'final', effectiveDateTime: '2021-02-03', subject: { reference: 'resource:0' } });
  });

  it('answers a Parameters without parameters when no card fits: nothing to put on it, two kinds on one card, a kind not issued here', async () => {
    for (const [patient, types] of [
      [ids.empty, ['Immunization']],
      [ids.patient, ['Immunization', 'Observation']],
      [ids.patient, ['https://smarthealth.cards#covid19']],
    ] as const) {
      const res = await issue(patient, types.map((t) => ({ name: 'credentialType', valueUri: t })));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ resourceType: 'Parameters' });
    }
  });

  it('refuses a request without credentialType, an identity claim it does not give, a malformed _since; 404 for an unknown patient', async () => {
    expect((await issue(ids.patient, [])).status).toBe(400);
    expect((await issue(ids.patient, [{ name: 'credentialType', valueUri: 'Immunization' }, { name: 'includeIdentityClaim', valueString: 'Patient.contact' }])).status).toBe(400);
    expect((await issue(ids.patient, [{ name: 'credentialType', valueUri: 'Immunization' }, { name: '_since', valueDateTime: '2021-13' }])).status).toBe(400);
    // A value set it cannot expand would widen the card if ignored: refused.
    const unknownSet = await issue(ids.patient, [{ name: 'credentialType', valueUri: 'Immunization' }, { name: 'credentialValueSet', valueUri: 'https://example.org/no-such-value-set' }]);
    expect(unknownSet.status).toBe(400);
    expect(unknownSet.body.resourceType).toBe('OperationOutcome');
    const unknown = await issue('no-such-patient', [{ name: 'credentialType', valueUri: 'Immunization' }]);
    expect(unknown.status).toBe(404);
    expect(unknown.body.resourceType).toBe('OperationOutcome');
  });

  it("gives a patient's token its own cards and refuses another patient's; the smart-configuration says health-cards", async () => {
    const token = await mintToken(server, { scope: 'patient/*.rs', userId: 'u-john', fhirUser: `Patient/${ids.patient}`, role: 'patient', patient: ids.patient });
    const own = await issue(ids.patient, [{ name: 'credentialType', valueUri: 'Immunization' }], token);
    expect(own.status).toBe(200);
    expect(credentials(own.body)).toHaveLength(1);
    expect((await issue(ids.other, [{ name: 'credentialType', valueUri: 'Immunization' }], token)).status).toBe(403);
    const discovery = (await (await fetch(`${server.base}/.well-known/smart-configuration`)).json()) as Json;
    expect(discovery.capabilities).toContain('health-cards');
  });
});

describe('revocation and key rotation (cli health-card revoke / rotate-key)', () => {
  const immunizationCard = async (patient: string): Promise<{ jws: string; header: Json; payload: Json }> => {
    const [jws] = credentials((await issue(patient, [{ name: 'credentialType', valueUri: 'Immunization' }])).body);
    return { jws, ...(await verify(jws)) };
  };
  const jwks = async (): Promise<Json[]> => ((await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: Json[] }).keys;
  const crl = async (kid: string): Promise<{ status: number; body: Json; cors: string | null }> => {
    const res = await fetch(`${server.url}/.well-known/crl/${kid}.json`);
    return { status: res.status, body: (await res.json()) as Json, cors: res.headers.get('access-control-allow-origin') };
  };

  it("lists a revoked patient's rid with the time on every key's list, raises crlVersion, and leaves other patients' cards alone", async () => {
    const before = await immunizationCard(ids.patient);
    const other = await immunizationCard(ids.other);
    const kid = before.header.kid as string;
    // A short, base64url rid per patient, the same on every card of that patient under one key.
    expect(before.payload.vc.rid).toMatch(/^[A-Za-z0-9_-]{1,24}$/);
    expect((await immunizationCard(ids.patient)).payload.vc.rid).toBe(before.payload.vc.rid);
    expect(other.payload.vc.rid).not.toBe(before.payload.vc.rid);
    const version = (await jwks()).find((k) => k.kid === kid)?.crlVersion as number;
    expect(version).toBeGreaterThanOrEqual(1);
    const empty = await crl(kid);
    expect(empty).toMatchObject({ status: 200, cors: '*', body: { kid, method: 'rid', ctr: version } });

    const now = Math.floor(Date.now() / 1000);
    const lines = await revokeHealthCards(server.server.knex, ids.patient);
    expect(lines.join('\n')).toContain(kid);
    const revoked = await crl(kid);
    expect(revoked.body.ctr).toBe(version + 1);
    const entry = (revoked.body.rids as string[]).find((r) => r.startsWith(`${before.payload.vc.rid}.`)) as string;
    // The suffix is the time of revocation: cards issued (nbf) before it are revoked, a reissue after it is not.
    expect(Number(entry.split('.')[1])).toBeGreaterThanOrEqual(now);
    expect(before.payload.nbf).toBeLessThanOrEqual(Number(entry.split('.')[1]));
    expect((revoked.body.rids as string[]).some((r) => r.startsWith(`${other.payload.vc.rid}.`))).toBe(false);
    expect((await jwks()).find((k) => k.kid === kid)?.crlVersion).toBe(version + 1);
    // Revoking again replaces the entry (one per rid), and counts.
    await revokeHealthCards(server.server.knex, ids.patient);
    const again = await crl(kid);
    expect(again.body.ctr).toBe(version + 2);
    expect((again.body.rids as string[]).filter((r) => r.startsWith(`${before.payload.vc.rid}.`))).toHaveLength(1);
    expect((await crl('no-such-kid')).status).toBe(404);
  });

  it('rotates the issuer key: new cards are signed by the new key, the old key stays published and its cards verify', async () => {
    const old = await immunizationCard(ids.patient);
    await rotateHealthCardKeyCommand(server.server.knex);
    // This process reads the keys again at once (others within a minute).
    healthCardKeyFor(server.server.knex).refresh();
    const fresh = await immunizationCard(ids.patient);
    expect(fresh.header.kid).not.toBe(old.header.kid);
    const kids = (await jwks()).map((k) => k.kid);
    expect(kids).toEqual(expect.arrayContaining([old.header.kid, fresh.header.kid]));
    await verify(old.jws);
    // Under the new key the patient's rid is another one (keyed with the new kid and secret).
    expect(fresh.payload.vc.rid).not.toBe(old.payload.vc.rid);
    expect((await crl(fresh.header.kid)).body).toEqual({ kid: fresh.header.kid, method: 'rid', ctr: 1, rids: [] });
  });
});
