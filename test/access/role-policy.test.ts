import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadOperationPolicy, loadRolePolicy, roleAllows, roleMayCall, RolePolicyError, shippedOperationPolicy, shippedRolePolicy } from '../../server/access/role-policy';
import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * Roles (policies/roles.json) through real HTTP with real tokens: every user token has
 * `user/*.cruds`, so whatever is refused is refused by the role. Each row: role,
 * interaction, type, allowed or not.
 */
let server: TestServer;
let admin: string;
const ids: Record<string, string> = {};

const call = (token: string, method: string, path: string, body?: unknown) =>
  fhirRequest(method, `${server.base}${path}`, { body, headers: { Authorization: `Bearer ${token}` } });

// Everyone works at the one hospital (the insurer too, for Claims it insures), the patient is themself: only the role decides.
const userToken = (role: string) =>
  mintToken(server, { scope: 'user/*.cruds', userId: `u-${role}`, fhirUser: role === 'patient' ? `Patient/${ids.Patient}` : `Practitioner/${ids.doctor}`, role });

const NEW: Record<string, () => object> = {
  Patient: () => ({ resourceType: 'Patient', name: [{ family: 'New' }], managingOrganization: { reference: `Organization/${ids.hospital}` } }),
  Observation: () => ({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${ids.Patient}` } }),
  AuditEvent: () => ({
    resourceType: 'AuditEvent',
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
    recorded: '2026-01-01T00:00:00Z',
    agent: [{ requestor: true, who: { display: 'x' } }],
    source: { observer: { display: 'x' } },
  }),
  Claim: () => ({
    resourceType: 'Claim', status: 'active', use: 'claim', type: { text: 'x' }, created: '2026-01-01', priority: { text: 'normal' },
    patient: { reference: `Patient/${ids.Patient}` }, provider: { display: 'x' }, insurer: { reference: `Organization/${ids.hospital}` }, insurance: [{ sequence: 1, focal: true, coverage: { display: 'x' } }],
  }),
  MedicationDispense: () => ({ resourceType: 'MedicationDispense', status: 'completed', medicationCodeableConcept: { text: 'x' }, subject: { reference: `Patient/${ids.Patient}` } }),
  DiagnosticReport: () => ({ resourceType: 'DiagnosticReport', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${ids.Patient}` } }),
};

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  admin = await mintToken(server, { scope: 'system/*.*' });
  ids.hospital = (await call(admin, 'POST', '/Organization', { resourceType: 'Organization', name: 'Hospital' })).body.id;
  ids.doctor = (await call(admin, 'POST', '/Practitioner', { resourceType: 'Practitioner' })).body.id;
  await call(admin, 'POST', '/PractitionerRole', {
    resourceType: 'PractitionerRole',
    practitioner: { reference: `Practitioner/${ids.doctor}` },
    organization: { reference: `Organization/${ids.hospital}` },
  });
  for (const type of Object.keys(NEW)) ids[type] = (await call(admin, 'POST', `/${type}`, NEW[type]())).body.id;
}, 60000);

afterAll(async () => {
  await server?.stop();
});

type Interaction = 'read' | 'search' | 'create' | 'update' | 'delete';
const ROWS: [string, Interaction, string, boolean][] = [
  ['admin', 'read', 'Observation', true],
  ['admin', 'delete', 'Observation', true],
  ['admin', 'update', 'AuditEvent', false],
  ['practitioner', 'create', 'Observation', true],
  ['practitioner', 'search', 'Patient', true],
  ['practitioner', 'read', 'AuditEvent', false],
  ['nurse', 'create', 'Observation', true],
  ['nurse', 'read', 'Patient', true],
  ['nurse', 'delete', 'Patient', false],
  ['nurse', 'read', 'Claim', false],
  ['receptionist', 'create', 'Patient', true],
  ['receptionist', 'read', 'Observation', false],
  ['receptionist', 'search', 'Observation', false],
  ['patient', 'read', 'Observation', true],
  ['patient', 'delete', 'Observation', false],
  ['patient', 'read', 'AuditEvent', false],
  ['pharmacist', 'create', 'MedicationDispense', true],
  ['pharmacist', 'create', 'Observation', false],
  ['lab-technician', 'create', 'DiagnosticReport', true],
  ['lab-technician', 'read', 'Claim', false],
  ['insurer', 'read', 'Claim', true],
  // Clinical types are read-only for an insurer (its care boundary keeps them to what its Claims reference).
  ['insurer', 'create', 'Observation', false],
  ['insurer', 'search', 'MedicationDispense', false],
  ['auditor', 'search', 'AuditEvent', true],
  ['auditor', 'read', 'AuditEvent', true],
  ['auditor', 'read', 'Patient', false],
  ['auditor', 'search', 'Observation', false],
];

describe('a role allows exactly what policies/roles.json says', () => {
  it.each(ROWS)('%s: %s %s → allowed %s', async (role, interaction, type, allowed) => {
    const token = await userToken(role);
    let res;
    if (interaction === 'read') res = await call(token, 'GET', `/${type}/${ids[type]}`);
    else if (interaction === 'search') res = await call(token, 'GET', `/${type}?_count=1`);
    else if (interaction === 'create') res = await call(token, 'POST', `/${type}`, NEW[type]());
    else if (interaction === 'update') {
      const current = (await call(admin, 'GET', `/${type}/${ids[type]}`)).body;
      res = await call(token, 'PUT', `/${type}/${ids[type]}`, current);
    } else {
      const victim = (await call(admin, 'POST', `/${type}`, NEW[type]())).body.id;
      res = await call(token, 'DELETE', `/${type}/${victim}`);
    }
    if (allowed) expect(res.status).toBeLessThan(300);
    else if (type === 'AuditEvent' && interaction !== 'read' && interaction !== 'search') {
      // AuditEvents are append-only for everyone: the route itself refuses the change.
      expect([403, 405]).toContain(res.status);
    } else {
      expect(res.status).toBe(403);
      expect(res.body.issue[0].code).toBe('forbidden');
    }
  });
});

describe('a role is not widened through other paths', () => {
  it('an auditor\'s _include of the patients of AuditEvents includes no Patient', async () => {
    const token = await userToken('auditor');
    const res = await call(token, 'GET', '/AuditEvent?_include=AuditEvent:entity');
    expect(res.status).toBe(200);
    // Directory data (the Organization) may come along; nothing clinical, no Patient.
    expect((res.body.entry ?? []).filter((e: any) => !['AuditEvent', 'Organization', 'Practitioner', 'PractitionerRole'].includes(e.resource.resourceType))).toEqual([]);
  });

  it('an insurer cannot search Claims by a chain into a type its role refuses', async () => {
    const token = await userToken('insurer');
    expect((await call(token, 'GET', '/Claim?facility:Location.name=Ward')).status).toBe(403);
  });

  it('a receptionist\'s transaction with an Observation is refused whole', async () => {
    const token = await userToken('receptionist');
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', name: [{ family: 'ViaTransaction' }] } },
        { request: { method: 'POST', url: 'Observation' }, resource: NEW.Observation() },
      ],
    };
    expect((await call(token, 'POST', '', bundle)).status).toBe(403);
    expect((await call(admin, 'GET', '/Patient?family=ViaTransaction&_summary=count')).body.total).toBe(0);
  });

  it('a user token without a role may do nothing', async () => {
    const token = await mintToken(server, { scope: 'user/*.cruds', userId: 'u-none', fhirUser: `Practitioner/${ids.doctor}` });
    expect((await call(token, 'GET', `/Patient/${ids.Patient}`)).status).toBe(403);
  });

  it('a backend service (no user) is governed by its scopes alone', async () => {
    const token = await mintToken(server, { scope: 'system/Observation.rs' });
    expect((await call(token, 'GET', `/Observation/${ids.Observation}`)).status).toBe(200);
  });
});

describe('the policy file', () => {
  const write = (content: unknown): string => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'roles-')), 'roles.json');
    writeFileSync(file, JSON.stringify(content));
    return file;
  };

  it('ships a rule for every role', () => {
    const policy = shippedRolePolicy();
    for (const role of ['admin', 'practitioner', 'nurse', 'receptionist', 'patient', 'pharmacist', 'lab-technician', 'insurer', 'auditor']) {
      expect(policy.has(role)).toBe(true);
    }
    expect(roleAllows(policy, 'auditor', 'AuditEvent', 's')).toBe(true);
    expect(roleAllows(policy, 'nobody', 'Patient', 'r')).toBe(false);
  });

  it('refuses unknown roles, unknown types and letters out of order, naming the entry', () => {
    expect(() => loadRolePolicy(write({ roles: { wizard: { '*': 'r' } } }))).toThrow(/unknown role "wizard"/);
    expect(() => loadRolePolicy(write({ roles: { nurse: { Patiant: 'r' } } }))).toThrow(/unknown resource type "Patiant"/);
    expect(() => loadRolePolicy(write({ roles: { nurse: { Patient: 'sr' } } }))).toThrow(RolePolicyError);
    expect(() => loadRolePolicy(write({}))).toThrow(/no "roles"/);
  });

  it('names the roles that may break the glass and transfer, and no operation it does not list', () => {
    const operations = shippedOperationPolicy();
    expect(['practitioner', 'nurse'].every((role) => roleMayCall(operations, role, 'emergency-access'))).toBe(true);
    expect(['pharmacist', 'patient', 'insurer', 'auditor', 'receptionist'].some((role) => roleMayCall(operations, role, 'emergency-access'))).toBe(false);
    expect(roleMayCall(operations, 'practitioner', 'unlisted-operation')).toBe(false);
    expect(() => loadOperationPolicy(write({ roles: {}, operations: { transfer: ['wizard'] } }))).toThrow(/operation "transfer"/);
    expect(loadOperationPolicy(write({ roles: {} })).size).toBe(0);
  });
});
