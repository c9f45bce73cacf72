import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * What a token's scopes let through, interaction by interaction, on a server that
 * requires tokens. Two patients, Alice and Bob, each with a laboratory and a
 * vital-signs Observation; every patient-scoped token is Alice's.
 */
let server: TestServer;
let admin: string;
const ids: Record<string, string> = {};

type Req = { body?: unknown; headers?: Record<string, string> };
const call = (token: string | undefined, method: string, path: string, options: Req = {}) =>
  fhrRequestWith(token, method, path, options);

function fhrRequestWith(token: string | undefined, method: string, path: string, options: Req) {
  const headers = { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...options.headers };
  return fhirRequest(method, `${server.base}${path}`, { body: options.body, headers });
}

// A practitioner's app launched for Alice (patient context): the role allows every letter, so the scopes decide.
const alice = (scope: string) =>
  mintToken(server, { scope, patient: ids.alice, userId: 'u-doctor', fhirUser: 'Practitioner/doctor', role: 'practitioner' });

function observation(patient: string, category: string, code: string) {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: category }] }],
    code: { coding: [{ system: 'http://loinc.org', code }] },
    subject: { reference: `Patient/${patient}` },
  };
}

const entryIds = (bundle: any): string[] =>
  [...new Set<string>((bundle.entry ?? []).filter((e: any) => e.resource).map((e: any) => `${e.resource.resourceType}/${e.resource.id}`))].sort();

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  admin = await mintToken(server, { scope: 'system/*.*' });
  const create = async (resource: object) => (await call(admin, 'POST', `/${(resource as any).resourceType}`, { body: resource })).body.id as string;
  ids.practitioner = await create({ resourceType: 'Practitioner', name: [{ family: 'Welby' }] });
  // The doctor whose app runs in Alice's context works where both patients are managed: only the scopes separate them.
  const hospital = await create({ resourceType: 'Organization', name: 'General' });
  await call(admin, 'PUT', '/Practitioner/doctor', { body: { resourceType: 'Practitioner', id: 'doctor' } });
  await create({ resourceType: 'PractitionerRole', practitioner: { reference: 'Practitioner/doctor' }, organization: { reference: `Organization/${hospital}` } });
  const managed = { managingOrganization: { reference: `Organization/${hospital}` }, generalPractitioner: [{ reference: `Practitioner/${ids.practitioner}` }] };
  ids.alice = await create({ resourceType: 'Patient', name: [{ family: 'Alison', given: ['Alice'] }], ...managed });
  ids.bob = await create({ resourceType: 'Patient', name: [{ family: 'Roberts', given: ['Bob'] }], ...managed });
  ids.aliceLab = await create(observation(ids.alice, 'laboratory', '2345-7'));
  ids.aliceVital = await create(observation(ids.alice, 'vital-signs', '8867-4'));
  ids.bobLab = await create(observation(ids.bob, 'laboratory', '2345-7'));
  ids.bobVital = await create(observation(ids.bob, 'vital-signs', '8867-4'));
}, 60000);

afterAll(async () => {
  await server?.stop();
});

describe('tokens', () => {
  it('refuses a request without a token with 401 and a Bearer challenge', async () => {
    const res = await call(undefined, 'GET', '/Patient');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('refuses a garbage token with 401 invalid_token', async () => {
    const res = await call('not.a.token', 'GET', `/Patient/${ids.alice}`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(res.text).not.toContain('Alison');
  });

  it('answers the CapabilityStatement without a token', async () => {
    expect((await call(undefined, 'GET', '/metadata')).status).toBe(200);
  });

  it('lets a system/*.read token read and search but not write', async () => {
    const token = await mintToken(server, { scope: 'system/*.read' });
    expect((await call(token, 'GET', `/Patient/${ids.bob}`)).status).toBe(200);
    expect((await call(token, 'GET', '/Observation')).body.entry).toHaveLength(4);
    const created = await call(token, 'POST', '/Patient', { body: { resourceType: 'Patient' } });
    expect(created.status).toBe(403);
    expect(created.body.issue[0].code).toBe('forbidden');
    expect((await call(token, 'DELETE', `/Patient/${ids.bob}`)).status).toBe(403);
  });
});

describe('a patient-scoped token', () => {
  let token: string;
  beforeAll(async () => {
    token = await alice('patient/*.rs');
  });

  it('reads its own patient and refuses another patient by id', async () => {
    expect((await call(token, 'GET', `/Patient/${ids.alice}`)).status).toBe(200);
    const other = await call(token, 'GET', `/Patient/${ids.bob}`);
    expect(other.status).toBe(403);
    expect(other.text).not.toContain('Roberts');
    expect((await call(token, 'GET', `/Observation/${ids.bobLab}`)).status).toBe(403);
    expect((await call(token, 'GET', `/Observation/${ids.bobLab}/_history/1`)).status).toBe(403);
    expect((await call(token, 'GET', `/Observation/${ids.bobLab}/_history`)).status).toBe(403);
  });

  it('reads a resource moved into its compartment, but not the versions from before the move', async () => {
    const moved = (await call(admin, 'POST', '/Observation', { body: observation(ids.bob, 'exam', 'moved') })).body;
    await call(admin, 'PUT', `/Observation/${moved.id}`, { body: { ...moved, subject: { reference: `Patient/${ids.alice}` } } });
    expect((await call(token, 'GET', `/Observation/${moved.id}`)).status).toBe(200);
    expect((await call(token, 'GET', `/Observation/${moved.id}/_history/2`)).status).toBe(200);
    expect((await call(token, 'GET', `/Observation/${moved.id}/_history/1`)).status).toBe(403);
    const typeHistory = (await call(token, 'GET', '/Observation/_history')).body.entry.filter((e: any) => e.fullUrl.endsWith(moved.id));
    expect(typeHistory.map((e: any) => e.resource.meta.versionId)).toEqual(['2']);
    await call(admin, 'DELETE', `/Observation/${moved.id}`);
  });

  it('finds only its own resources by search, even when it asks for the other patient', async () => {
    expect(entryIds((await call(token, 'GET', '/Observation')).body)).toEqual(
      [`Observation/${ids.aliceLab}`, `Observation/${ids.aliceVital}`].sort()
    );
    expect((await call(token, 'GET', `/Observation?subject=Patient/${ids.bob}`)).body.entry ?? []).toEqual([]);
    expect((await call(token, 'GET', `/Observation?subject=Patient/${ids.bob},Patient/${ids.alice}&_summary=count`)).body.total).toBe(2);
    expect((await call(token, 'GET', `/Observation?subject=${ids.bob}`)).body.entry ?? []).toEqual([]);
    expect((await call(token, 'GET', `/Observation?subject=Patient/${ids.alice}&_summary=count`)).body.total).toBe(2);
    expect(entryIds((await call(token, 'GET', '/Patient')).body)).toEqual([`Patient/${ids.alice}`]);
    expect((await call(token, 'GET', `/Patient/${ids.bob}/Observation`)).body.entry ?? []).toEqual([]);
  });

  it('counts only its own resources with _summary=count and _total', async () => {
    expect((await call(token, 'GET', '/Observation?_summary=count')).body.total).toBe(2);
    expect((await call(token, 'GET', '/Observation?_total=accurate')).body.total).toBe(2);
  });

  it('gets nothing of the other patient through _include', async () => {
    const included = await call(token, 'GET', `/Observation?_include=Observation:subject`);
    expect(included.text).not.toContain(ids.bob);
    expect(entryIds(included.body)).toContain(`Patient/${ids.alice}`);
    // Alice's own Observation pointing at Bob does not bring Bob in either.
    const pointing = (await call(admin, 'POST', '/Observation', { body: { ...observation(ids.alice, 'exam', 'ptr'), performer: [{ reference: `Patient/${ids.bob}` }] } })).body.id;
    const viaPerformer = await call(token, 'GET', `/Observation?_id=${pointing}&_include=Observation:performer`);
    expect(entryIds(viaPerformer.body)).toEqual([`Observation/${pointing}`]);
    expect(viaPerformer.text).not.toContain('Roberts');
    await call(admin, 'DELETE', `/Observation/${pointing}`);
  });

  it('gets nothing of the other patient through _revinclude', async () => {
    const revincluded = await call(token, 'GET', `/Patient?_id=${ids.alice},${ids.bob}&_revinclude=Observation:subject`);
    expect(entryIds(revincluded.body)).toEqual([`Observation/${ids.aliceLab}`, `Observation/${ids.aliceVital}`, `Patient/${ids.alice}`].sort());
    // Shared resources outside the compartment stay readable: the practitioner.
    const gp = await call(token, 'GET', `/Patient?_include=Patient:general-practitioner&_include:iterate=Practitioner:*`);
    expect(entryIds(gp.body)).toEqual([`Patient/${ids.alice}`, `Practitioner/${ids.practitioner}`].sort());
  });

  it('learns nothing about the other patient through chains or _has', async () => {
    expect((await call(token, 'GET', '/Observation?subject:Patient.family=Roberts')).body.entry ?? []).toEqual([]);
    expect((await call(token, 'GET', '/Observation?subject:Patient.family=Alison&_summary=count')).body.total).toBe(2);
    expect((await call(token, 'GET', '/Practitioner?_has:Patient:general-practitioner:family=Roberts')).body.entry ?? []).toEqual([]);
    expect((await call(token, 'GET', '/Practitioner?_has:Patient:general-practitioner:family=Alison')).body.entry).toHaveLength(1);
  });

  it('sees only its own versions in type and system history', async () => {
    const history = await call(token, 'GET', '/Observation/_history');
    expect(history.status).toBe(200);
    expect(history.text).not.toContain(ids.bobLab);
    expect(entryIds(history.body)).toEqual(expect.arrayContaining([`Observation/${ids.aliceLab}`, `Observation/${ids.aliceVital}`]));
    expect(history.text).not.toContain(ids.bobVital);
    const system = await call(token, 'GET', '/_history');
    expect(system.text).not.toContain(ids.bobLab);
    expect(system.text).not.toContain('Roberts');
  });

  it('gets its own $everything and not the other patient\'s', async () => {
    expect((await call(token, 'GET', `/Patient/${ids.bob}/$everything`)).status).toBe(403);
    const own = await call(token, 'GET', `/Patient/${ids.alice}/$everything`);
    expect(own.status).toBe(200);
    expect(own.text).not.toContain(ids.bob);
    expect(entryIds(own.body)).toEqual(
      expect.arrayContaining([`Patient/${ids.alice}`, `Observation/${ids.aliceLab}`, `Observation/${ids.aliceVital}`, `Practitioner/${ids.practitioner}`])
    );
    expect(entryIds(own.body).filter((e) => e.startsWith('Patient/') || e.startsWith('Observation/'))).toHaveLength(3);
    // Type level: every record this token may see, which is its own (read without walking the others'), paged as asked.
    const typeLevel = await call(token, 'GET', '/Patient/$everything?_count=2');
    expect(typeLevel.status).toBe(200);
    expect(typeLevel.text).not.toContain(ids.bob);
    const pages = [typeLevel.body];
    for (let next = typeLevel.body.link.find((l: { relation: string }) => l.relation === 'next')?.url; next; ) {
      const page = await fetch(next, { headers: { Authorization: `Bearer ${token}` } });
      const body = (await page.json()) as { link: { relation: string; url: string }[] };
      pages.push(body);
      next = body.link.find((l) => l.relation === 'next')?.url;
    }
    expect(pages.flatMap((p) => entryIds(p)).sort()).toEqual(entryIds(own.body).sort());
  });

  it('cannot write with read and search scopes', async () => {
    const res = await call(token, 'POST', '/Observation', { body: observation(ids.alice, 'laboratory', '1') });
    expect(res.status).toBe(403);
  });
});

describe('each scope letter on its own', () => {
  it('r reads by id but does not search', async () => {
    const token = await alice('patient/Observation.r');
    expect((await call(token, 'GET', `/Observation/${ids.aliceLab}`)).status).toBe(200);
    expect((await call(token, 'GET', '/Observation')).status).toBe(403);
  });

  it('s searches but does not read by id', async () => {
    const token = await alice('patient/Observation.s');
    expect((await call(token, 'GET', '/Observation')).status).toBe(200);
    expect((await call(token, 'GET', `/Observation/${ids.aliceLab}`)).status).toBe(403);
  });

  it('c creates within the compartment only, and neither reads, updates nor deletes', async () => {
    const token = await alice('patient/Observation.c');
    const own = await call(token, 'POST', '/Observation', { body: observation(ids.alice, 'exam', 'c-own') });
    expect(own.status).toBe(201);
    const creates = async (outcome: string) => (await call(admin, 'GET', `/AuditEvent?subtype=create&outcome=${outcome}&_summary=count`)).body.total;
    const [succeeded, failed] = [await creates('0'), await creates('4')];
    const other = await call(token, 'POST', '/Observation', { body: observation(ids.bob, 'exam', 'c-other') });
    expect(other.status).toBe(403);
    const count = await call(admin, 'GET', '/Observation?code=c-other&_summary=count');
    expect(count.body.total).toBe(0);
    // The refused create was written, then rolled back with the AuditEvent that rode on it: only the refusal is recorded.
    expect([await creates('0'), await creates('4')]).toEqual([succeeded, failed + 1]);
    expect((await call(token, 'GET', `/Observation/${own.body.id}`)).status).toBe(403);
    expect((await call(token, 'PUT', `/Observation/${own.body.id}`, { body: { ...own.body } })).status).toBe(403);
    expect((await call(token, 'DELETE', `/Observation/${own.body.id}`)).status).toBe(403);
  });

  it('u updates its own resources, and cannot move one into or out of another compartment', async () => {
    const token = await alice('patient/Observation.u');
    const current = (await call(admin, 'GET', `/Observation/${ids.aliceVital}`)).body;
    expect((await call(token, 'PUT', `/Observation/${ids.aliceVital}`, { body: { ...current, status: 'amended' } })).status).toBe(200);
    const moved = await call(token, 'PUT', `/Observation/${ids.aliceVital}`, { body: { ...current, subject: { reference: `Patient/${ids.bob}` } } });
    expect(moved.status).toBe(403);
    expect((await call(admin, 'GET', `/Observation/${ids.aliceVital}`)).body.subject.reference).toBe(`Patient/${ids.alice}`);
    const bobs = (await call(admin, 'GET', `/Observation/${ids.bobVital}`)).body;
    expect((await call(token, 'PUT', `/Observation/${ids.bobVital}`, { body: { ...bobs, subject: { reference: `Patient/${ids.alice}` } } })).status).toBe(403);
    const patch = [{ op: 'replace', path: '/status', value: 'amended' }];
    const patched = await call(token, 'PATCH', `/Observation/${ids.bobVital}`, { body: patch, headers: { 'Content-Type': 'application/json-patch+json' } });
    expect(patched.status).toBe(403);
    // Update-as-create needs c as well.
    expect((await call(token, 'PUT', '/Observation/brand-new', { body: { ...observation(ids.alice, 'laboratory', 'x'), id: 'brand-new' } })).status).toBe(403);
  });

  it('d deletes its own resources and not the other patient\'s', async () => {
    const target = (await call(admin, 'POST', '/Observation', { body: observation(ids.alice, 'laboratory', 'd-own') })).body.id;
    const token = await alice('patient/Observation.d');
    expect((await call(token, 'DELETE', `/Observation/${ids.bobLab}`)).status).toBe(403);
    expect((await call(admin, 'GET', `/Observation/${ids.bobLab}`)).status).toBe(200);
    expect([200, 204]).toContain((await call(token, 'DELETE', `/Observation/${target}`)).status);
    expect((await call(token, 'DELETE', `/Observation?code=2345-7`)).status).toBe(403);
  });
});

describe('scope query filters (SMART v2)', () => {
  it('confine search and read to the resources matching the query', async () => {
    const token = await alice('patient/Observation.rs?category=laboratory');
    expect(entryIds((await call(token, 'GET', '/Observation')).body)).toEqual([`Observation/${ids.aliceLab}`]);
    expect((await call(token, 'GET', `/Observation/${ids.aliceLab}`)).status).toBe(200);
    expect((await call(token, 'GET', `/Observation/${ids.aliceVital}`)).status).toBe(403);
  });

  it('add up over several scopes of the same type', async () => {
    const token = await alice('patient/Observation.rs?category=laboratory patient/Observation.rs?category=vital-signs');
    expect((await call(token, 'GET', '/Observation?_summary=count')).body.total).toBe(2);
  });
});

describe('failing closed', () => {
  it('grants nothing for patient/ scopes in a token without a patient', async () => {
    const token = await mintToken(server, { scope: 'patient/*.rs', userId: 'u', fhirUser: `Patient/${ids.alice}`, role: 'patient' });
    expect((await call(token, 'GET', '/Observation')).status).toBe(403);
    expect((await call(token, 'GET', `/Patient/${ids.alice}`)).status).toBe(403);
  });

  it('grants nothing for user/ scopes in a token without fhirUser', async () => {
    const token = await mintToken(server, { scope: 'user/*.rs', userId: 'u', role: 'practitioner' });
    expect((await call(token, 'GET', '/Observation')).status).toBe(403);
  });

  it('grants nothing for a system/ scope in a token issued to a user', async () => {
    const token = await mintToken(server, { scope: 'system/*.rs', userId: 'u', fhirUser: 'Practitioner/x', role: 'admin' });
    expect((await call(token, 'GET', '/Observation')).status).toBe(403);
  });

  it('grants nothing for unknown or malformed scopes', async () => {
    for (const scope of ['patient/*.readall', 'patient/Observation.sr', '*/*.*', 'patient/*']) {
      const token = await alice(scope);
      expect((await call(token, 'GET', '/Observation')).status).toBe(403);
    }
  });

  it('grants nothing for a scope whose query names a parameter the server cannot apply', async () => {
    for (const scope of ['patient/Observation.rs?no-such-param=1', 'patient/Observation.rs?code:fancy=1', 'patient/Observation.rs?_sort=date', 'patient/Observation.rs?date=2020-13-45']) {
      const token = await alice(scope);
      const res = await call(token, 'GET', '/Observation');
      expect(res.status).toBe(403);
      expect(res.text).not.toContain(ids.bobLab);
    }
  });
});

describe('bundles', () => {
  it('refuse a whole transaction that writes into another patient\'s compartment, writing nothing', async () => {
    const token = await alice('patient/Observation.crus');
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'POST', url: 'Observation' }, resource: observation(ids.alice, 'laboratory', 'tx-own') },
        { request: { method: 'POST', url: 'Observation' }, resource: observation(ids.bob, 'laboratory', 'tx-other') },
      ],
    };
    const res = await call(token, 'POST', '', { body: bundle });
    expect(res.status).toBe(403);
    expect((await call(admin, 'GET', '/Observation?code=tx-own,tx-other&_summary=count')).body.total).toBe(0);
  });

  it('fail the batch entries that reach another patient, and answer the others', async () => {
    const token = await alice('patient/*.rs');
    const bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { request: { method: 'GET', url: `Observation/${ids.aliceLab}` } },
        { request: { method: 'GET', url: `Observation/${ids.bobLab}` } },
        { request: { method: 'GET', url: `Observation?subject=Patient/${ids.bob}` } },
      ],
    };
    const res = await call(token, 'POST', '', { body: bundle });
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: any) => e.response.status.slice(0, 3))).toEqual(['200', '403', '200']);
    expect(res.text).not.toContain('Roberts');
    expect(res.body.entry[2].resource.entry ?? []).toEqual([]);
  });

  it('refuse a conditional create whose criteria match another patient\'s resource', async () => {
    const token = await alice('patient/Observation.cruds');
    const res = await call(token, 'POST', '/Observation', {
      body: observation(ids.alice, 'laboratory', 'cond'),
      headers: { 'If-None-Exist': `_id=${ids.bobLab}` },
    });
    expect(res.status).toBe(403);
  });
});

test('$meta-add needs the update letter and a resource within the compartment, current or older version', async () => {
  const body = { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: { tag: [{ system: 'urn:tags', code: 'reviewed' }] } }] };
  const reader = await alice('patient/Observation.rs');
  expect((await call(reader, 'POST', `/Observation/${ids.aliceLab}/$meta-add`, { body })).status).toBe(403);
  const writer = await alice('patient/Observation.rus');
  const mine = await call(writer, 'POST', `/Observation/${ids.aliceLab}/$meta-add`, { body });
  expect(mine.status).toBe(200);
  expect(mine.body.parameter[0].valueMeta).toMatchObject({ versionId: '1', tag: [{ code: 'reviewed' }] });
  expect((await call(writer, 'POST', `/Observation/${ids.bobLab}/$meta-add`, { body })).status).toBe(403);
  expect((await call(writer, 'POST', `/Observation/${ids.bobLab}/_history/1/$meta-add`, { body })).status).toBe(403);
  expect((await call(admin, 'GET', `/Observation/${ids.bobLab}`)).body.meta.tag).toBeUndefined();
});
