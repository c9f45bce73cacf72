import type { AuditEvent, Bundle } from '@medplum/fhirtypes';
import { mintToken } from '../support/mint-token';
import { clientCredentials, postForm, registerConfidentialClient } from '../support/oauth';
import { startTestServer, type TestServer } from '../support/test-server';
import { CookieBrowser, registerApp, registerUser, signIn } from '../auth/html-flow';

/** Every FHIR interaction leaves an AuditEvent (BALP / R4 AuditEvent), found through the API itself. */
let server: TestServer;
let writer: string;
let auditor: string;
const USER = { userId: 'u-doc', fhirUser: 'Practitioner/doc', role: 'admin' };

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  writer = await mintToken(server, { scope: 'user/*.cruds', ...USER });
  auditor = await mintToken(server, { scope: 'system/AuditEvent.rs' });
}, 60000);

afterAll(async () => {
  await server?.stop();
});

async function call(method: string, path: string, token: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': method === 'PATCH' ? 'application/json-patch+json' : 'application/fhir+json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function audits(query: string): Promise<AuditEvent[]> {
  const res = await call('GET', `/AuditEvent?${query}&_count=100&_sort=-date`, auditor);
  expect(res.status).toBe(200);
  return ((res.body as Bundle).entry ?? []).map((e) => e.resource as AuditEvent);
}

const subtypeOf = (e: AuditEvent) => e.subtype?.[0]?.code;
const entityRefs = (e: AuditEvent) => (e.entity ?? []).map((x) => x.what?.reference).filter(Boolean);
const userAgent = (e: AuditEvent) => e.agent.find((a) => a.who?.reference);
const clientAgent = (e: AuditEvent) => e.agent.find((a) => a.who?.identifier?.system === 'urn:ietf:rfc:6749:client_id');

async function createPatient(): Promise<string> {
  const res = await call('POST', '/Patient', writer, { resourceType: 'Patient', name: [{ family: 'Audit' }] });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

describe('AuditEvents of FHIR interactions', () => {
  it('records a create with action C, outcome 0, the user and the client as agents, the source address and the created resource', async () => {
    const id = await createPatient();
    const [event] = await audits(`entity=Patient/${id}&subtype=create`);
    expect(event.type.code).toBe('rest');
    expect(event.type.system).toBe('http://terminology.hl7.org/CodeSystem/audit-event-type');
    expect(event.subtype?.[0]).toEqual({ system: 'http://hl7.org/fhir/restful-interaction', code: 'create' });
    expect(event.action).toBe('C');
    expect(event.outcome).toBe('0');
    expect(userAgent(event)).toMatchObject({ who: { reference: 'Practitioner/doc' }, requestor: true, role: [{ text: 'admin' }] });
    expect(userAgent(event)?.network?.address).toMatch(/127\.0\.0\.1/);
    expect(clientAgent(event)?.who?.identifier?.value).toBe('test-client');
    expect(event.source.observer.identifier?.value).toBe(server.base);
    expect(entityRefs(event)).toContain(`Patient/${id}`);
  });

  it('records read, vread, history and update, patch and delete with their subtypes and actions', async () => {
    const id = await createPatient();
    expect((await call('GET', `/Patient/${id}`, writer)).status).toBe(200);
    expect((await call('GET', `/Patient/${id}/_history/1`, writer)).status).toBe(200);
    expect((await call('GET', `/Patient/${id}/_history`, writer)).status).toBe(200);
    expect((await call('PUT', `/Patient/${id}`, writer, { resourceType: 'Patient', id, active: true })).status).toBe(200);
    expect((await call('PATCH', `/Patient/${id}`, writer, [{ op: 'add', path: '/gender', value: 'other' }])).status).toBe(200);
    expect((await call('DELETE', `/Patient/${id}`, writer)).status).toBe(204);
    const events = await audits(`entity=Patient/${id}`);
    const byType = new Map(events.map((e) => [subtypeOf(e), e.action]));
    expect(byType.get('create')).toBe('C');
    expect(byType.get('read')).toBe('R');
    expect(byType.get('history-instance')).toBe('R');
    expect(byType.get('update')).toBe('U');
    expect(byType.get('patch')).toBe('U');
    expect(byType.get('delete')).toBe('D');
    const vread = events.find((e) => subtypeOf(e) === 'vread') as AuditEvent;
    expect(vread.action).toBe('R');
    expect(entityRefs(vread)).toContain(`Patient/${id}/_history/1`);
  });

  it('records each write once, with the status it answered: 201/200 creates and updates, 204 or 200 deletes, a conditional create that matched', async () => {
    const identifier = `urn:uuid:${crypto.randomUUID()}`;
    const body = { resourceType: 'Patient', identifier: [{ system: 'urn:test', value: identifier }] };
    const created = await call('POST', '/Patient', writer, body, { 'If-None-Exist': `identifier=urn:test|${identifier}` });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect((await call('POST', '/Patient', writer, body, { 'If-None-Exist': `identifier=urn:test|${identifier}` })).status).toBe(200);
    expect((await call('PUT', `/Patient/${id}`, writer, { ...body, id, active: true })).status).toBe(200);
    const other = crypto.randomUUID();
    expect((await call('PUT', `/Patient/${other}`, writer, { resourceType: 'Patient', id: other })).status).toBe(201);
    expect((await call('DELETE', `/Patient/${id}`, writer)).status).toBe(204);
    expect((await call('DELETE', `/Patient/${other}`, writer, undefined, { Prefer: 'return=OperationOutcome' })).status).toBe(200);
    expect((await call('DELETE', `/Patient/${other}`, writer)).status).toBe(204);

    const outcomes = async (target: string) =>
      (await audits(`entity=Patient/${target}`)).map((e) => `${subtypeOf(e)} ${e.outcomeDesc?.split(' ')[0]}`).sort();
    expect(await outcomes(id)).toEqual(['create 200', 'create 201', 'delete 204', 'update 200']);
    expect(await outcomes(other)).toEqual(['delete 200', 'delete 204', 'update 201']);
  });

  it('records a search with its query (base64) and one patient entity per Patient whose data it returned', async () => {
    const id = await createPatient();
    const obs = await call('POST', '/Observation', writer, { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${id}` } });
    expect(obs.status).toBe(201);
    expect((await call('GET', `/Observation?subject=Patient/${id}`, writer)).status).toBe(200);
    const [event] = await audits(`patient=Patient/${id}&subtype=search-type`);
    expect(event.action).toBe('R');
    const query = event.entity?.find((e) => e.query);
    expect(Buffer.from(query?.query as string, 'base64').toString()).toBe(`subject=Patient/${id}`);
    const patient = event.entity?.find((e) => e.role?.code === '1');
    expect(patient?.what?.reference).toBe(`Patient/${id}`);
  });

  it('records a transaction once, with action E and the resources it wrote', async () => {
    const res = await call('POST', '', writer, {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ fullUrl: 'urn:uuid:1b7d5a36-2a5f-4bb8-9c1c-1d8c1f0e0a01', resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } }],
    });
    expect(res.status).toBe(200);
    const location = (res.body as Bundle).entry?.[0].response?.location?.replace(/\/_history\/.*/, '') as string;
    const [event] = await audits(`entity=${location}&subtype=transaction`);
    expect(event.action).toBe('E');
    expect(event.outcome).toBe('0');
  });

  it('records an operation ($validate) with subtype operation', async () => {
    const res = await call('POST', '/Patient/$validate', writer, { resourceType: 'Patient', gender: 'nonsense' });
    expect(res.status).toBeLessThan(500);
    const events = await audits('subtype=operation');
    expect(events.some((e) => e.outcomeDesc?.includes('/Patient/$validate'))).toBe(true);
  });

  it('records a refusal (403) and a missing resource (404) with outcome 4', async () => {
    const narrow = await mintToken(server, { scope: 'system/Observation.rs', clientId: 'narrow-client' });
    const id = await createPatient();
    expect((await call('GET', `/Patient/${id}`, narrow)).status).toBe(403);
    const events = await audits(`entity=Patient/${id}&subtype=read&outcome=4`);
    expect(events).toHaveLength(1);
    expect(events[0].outcomeDesc).toBeTruthy();
    expect((await call('GET', '/Patient/does-not-exist', writer)).status).toBe(404);
    expect(await audits('entity=Patient/does-not-exist&outcome=4')).toHaveLength(1);
  });

  it('takes the purpose of use from X-Purpose-Of-Use (v3-ActReason)', async () => {
    const id = await createPatient();
    await call('GET', `/Patient/${id}`, writer, undefined, { 'X-Purpose-Of-Use': 'ETREAT, BTG' });
    const [event] = await audits(`entity=Patient/${id}&subtype=read`);
    expect(event.purposeOfEvent?.[0].coding).toEqual([
      { system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'ETREAT' },
      { system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'BTG' },
    ]);
  });
});

describe('AuditEvents are append-only', () => {
  it('refuses PUT, PATCH and DELETE of an AuditEvent even with every scope, and records the refusal', async () => {
    const all = await mintToken(server, { scope: 'system/*.cruds' });
    const id = await createPatient();
    const [event] = await audits(`entity=Patient/${id}&subtype=create`);
    expect((await call('PUT', `/AuditEvent/${event.id}`, all, { ...event, outcomeDesc: 'changed' })).status).toBe(405);
    expect((await call('PATCH', `/AuditEvent/${event.id}`, all, [{ op: 'replace', path: '/outcome', value: '4' }])).status).toBe(405);
    expect((await call('DELETE', `/AuditEvent/${event.id}`, all)).status).toBe(405);
    const bundle = await call('POST', '', all, { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'DELETE', url: `AuditEvent/${event.id}` } }] });
    expect(bundle.status).toBe(405);
    expect((await audits(`entity=AuditEvent/${event.id}&outcome=4`)).length).toBeGreaterThanOrEqual(3);
    expect((await call('GET', `/AuditEvent/${event.id}`, auditor)).body.outcomeDesc).toBe(event.outcomeDesc);
  });

  it('refuses an UPDATE of the content and a DELETE in the database itself, but lets an index-only update through', async () => {
    const knex = server.server.knex;
    const row = await knex('AuditEvent').first('id');
    await expect(knex.raw(`UPDATE "AuditEvent" SET content = content || '{"outcome":"8"}' WHERE id = ?`, [row.id])).rejects.toThrow(/append-only/);
    await expect(knex('AuditEvent').where({ id: row.id }).delete()).rejects.toThrow(/append-only/);
    await expect(knex('resource_history').where({ resource_type: 'AuditEvent', id: row.id }).delete()).rejects.toThrow(/append-only/);
    await expect(knex.raw('UPDATE "AuditEvent" SET last_updated = last_updated WHERE id = ?', [row.id])).resolves.toBeDefined();
  });

  it('lets a client with c on AuditEvent create one, which is chained like the server’s own', async () => {
    const creator = await mintToken(server, { scope: 'system/AuditEvent.c' });
    const res = await call('POST', '/AuditEvent', creator, {
      resourceType: 'AuditEvent',
      type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110100' },
      recorded: new Date().toISOString(),
      agent: [{ who: { display: 'app' }, requestor: true }],
      source: { observer: { display: 'app' } },
    });
    expect(res.status).toBe(201);
    await server.server.audit!.sealed();
    expect(await server.server.knex('audit_chain').where({ audit_event_id: res.body.id }).first()).toBeDefined();
  });

  it('chains the AuditEvents a client creates inside a transaction Bundle too', async () => {
    const clientEvent = {
      resourceType: 'AuditEvent',
      type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110100' },
      recorded: new Date().toISOString(),
      agent: [{ who: { display: 'app' }, requestor: true }],
      source: { observer: { display: 'app' } },
    };
    const all = await mintToken(server, { scope: 'system/*.cruds' });
    const res = await call('POST', '', all, {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'POST', url: 'AuditEvent' }, resource: clientEvent },
        { request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient' } },
      ],
    });
    expect(res.status).toBe(200);
    const id = /AuditEvent\/([^/]+)\/_history/.exec(res.body.entry[0].response.location)?.[1];
    expect(id).toBeDefined();
    await server.server.audit!.sealed();
    expect(await server.server.knex('audit_chain').where({ audit_event_id: id }).first()).toBeDefined();
  });

  it('chains the AuditEvents a client creates in a batch Bundle, whose entries commit one by one', async () => {
    const all = await mintToken(server, { scope: 'system/*.cruds' });
    const res = await call('POST', '', all, {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        {
          request: { method: 'POST', url: 'AuditEvent' },
          resource: {
            resourceType: 'AuditEvent',
            type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110100' },
            recorded: new Date().toISOString(),
            agent: [{ who: { display: 'app' }, requestor: true }],
            source: { observer: { display: 'app' } },
          },
        },
      ],
    });
    expect(res.status).toBe(200);
    const id = /AuditEvent\/([^/]+)\/_history/.exec(res.body.entry[0].response.location)?.[1];
    expect(id).toBeDefined();
    await server.server.audit!.sealed();
    expect(await server.server.knex('audit_chain').where({ audit_event_id: id }).first()).toBeDefined();
  });
});

describe('AuditEvents of the authorization server', () => {
  it('records a token issue (110114 / 110122) with the client, and a refused one with outcome 4', async () => {
    const client = await registerConfidentialClient(server, 'system/Patient.rs');
    expect((await clientCredentials(server, client, 'system/Patient.rs')).status).toBe(200);
    expect((await postForm(server, '/auth/token', { grant_type: 'client_credentials', client_id: client.id, client_secret: 'wrong' })).status).toBe(401);
    const events = (await audits('type=http://dicom.nema.org/resources/ontology/DCM|110114')).filter(
      (e) => e.agent[0].who?.identifier?.value === client.id
    );
    expect(events.map((e) => e.outcome).sort()).toEqual(['0', '4']);
    expect(events[0].subtype?.[0].code).toBe('110122');
  });

  it('records a failed login with the username and outcome 4, and a successful one with outcome 0', async () => {
    await registerApp(server, { id: 'audit-app' });
    await registerUser(server, { username: 'audit-alice', fhirUser: 'Patient/audit-alice' });
    const refused = await signIn(new CookieBrowser(), server, 'audit-alice', { client_id: 'audit-app' }, 'wrong');
    expect(refused.status).toBe(200);
    const ok = await signIn(new CookieBrowser(), server, 'audit-alice', { client_id: 'audit-app' });
    expect(ok.status).toBe(303);
    const events = (await audits('type=http://dicom.nema.org/resources/ontology/DCM|110114')).filter(
      (e) => e.agent[0].who?.identifier?.value === 'audit-alice'
    );
    expect(events.map((e) => e.outcome).sort()).toEqual(['0', '4']);
    expect(events[0].subtype?.[0]).toMatchObject({ code: '110122', display: 'Login' });
  });
});
