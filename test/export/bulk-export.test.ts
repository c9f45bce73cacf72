import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

/** Bulk Data Access 2.0 export (https://hl7.org/fhir/uv/bulkdata/export.html). */

interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: string; url: string; count: number }[];
  error: unknown[];
}

const ASYNC = { Prefer: 'respond-async', Accept: 'application/fhir+json' };

async function kickOff(server: TestServer, path: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await fhirRequest('GET', `${server.base}/${path}`, { headers: { ...ASYNC, ...headers } });
  expect(res.status).toBe(202);
  const location = res.headers.get('content-location');
  expect(location).toMatch(/\$export-status\//);
  return location as string;
}

async function manifestOf(statusUrl: string, headers: Record<string, string> = {}): Promise<Manifest> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await fhirRequest('GET', statusUrl, { headers: { Accept: 'application/json', ...headers } });
    if (res.status === 200) {
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      return res.body as Manifest;
    }
    expect(res.status).toBe(202);
    expect(res.headers.get('x-progress')).toMatch(/resources exported/);
    if (Date.now() > deadline) throw new Error('export did not finish in 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Every resource of the manifest's files, by type, read as a client would (NDJSON, one resource a line). */
async function exported(manifest: Manifest, headers: Record<string, string> = {}): Promise<Map<string, any[]>> {
  const byType = new Map<string, any[]>();
  for (const file of manifest.output) {
    const res = await fetch(file.url, { headers: { Accept: 'application/fhir+ndjson', ...headers } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/fhir+ndjson');
    const lines = (await res.text()).split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(file.count);
    const resources = lines.map((l) => JSON.parse(l));
    for (const r of resources) expect(r.resourceType).toBe(file.type);
    byType.set(file.type, [...(byType.get(file.type) ?? []), ...resources]);
  }
  return byType;
}

const ids = (resources: any[] | undefined): string[] => (resources ?? []).map((r) => r.id).sort();

describe('without authorization', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ SEARCH_PARAMETER_REFRESH_MS: '100' });
    const put = (resource: any) => fhirRequest('PUT', `${server.base}/${resource.resourceType}/${resource.id}`, { body: resource });
    for (const id of ['ann', 'bob', 'cy']) await put({ resourceType: 'Patient', id, name: [{ family: id }] });
    for (const [id, patient] of [['o1', 'ann'], ['o2', 'ann'], ['o3', 'bob'], ['o4', 'cy']]) {
      await put({ resourceType: 'Observation', id, status: 'final', code: { text: 'pulse' }, subject: { reference: `Patient/${patient}` } });
    }
    await put({ resourceType: 'Organization', id: 'org', name: 'Clinic' });
    await put({ resourceType: 'Group', id: 'ann-and-bob', type: 'person', actual: true, member: [{ entity: { reference: 'Patient/ann' } }, { entity: { reference: 'Patient/bob' } }] });
    await put({ resourceType: 'Group', id: 'with-ghost', type: 'person', actual: true, member: [{ entity: { reference: 'Patient/ghost' } }, { entity: { reference: 'Patient/cy' } }] });
  });
  afterAll(async () => {
    await server.stop();
  });

  test('a system export of some types answers 202 with a status URL, then a manifest whose NDJSON files hold every resource of those types', async () => {
    const before = new Date().toISOString();
    const manifest = await manifestOf(await kickOff(server, '$export?_type=Patient,Observation,Organization'));
    expect(manifest.requiresAccessToken).toBe(false);
    expect(manifest.request).toBe(`${server.base}/$export?_type=Patient,Observation,Organization`);
    expect(manifest.transactionTime >= before).toBe(true);
    expect(manifest.error).toEqual([]);
    const files = await exported(manifest);
    expect(ids(files.get('Patient'))).toEqual(['ann', 'bob', 'cy']);
    expect(ids(files.get('Observation'))).toEqual(['o1', 'o2', 'o3', 'o4']);
    expect(ids(files.get('Organization'))).toEqual(['org']);
    expect(files.has('Group')).toBe(false);
    const read = await fhirRequest('GET', `${server.base}/Observation/o3`);
    expect(files.get('Observation')?.find((o) => o.id === 'o3')).toEqual(read.body);
  });

  test('_since exports only what changed at or after it', async () => {
    const since = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    await fhirRequest('PUT', `${server.base}/Observation/o2`, { body: { resourceType: 'Observation', id: 'o2', status: 'amended', code: { text: 'pulse' }, subject: { reference: 'Patient/ann' } } });
    const files = await exported(await manifestOf(await kickOff(server, `$export?_type=Observation,Patient&_since=${encodeURIComponent(since)}`)));
    expect(ids(files.get('Observation'))).toEqual(['o2']);
    expect(files.get('Observation')?.[0].status).toBe('amended');
    expect(files.has('Patient')).toBe(false);
  });

  test('a Patient-level export holds the Patient compartment of every patient; a Group-level one only that of its members', async () => {
    const all = await exported(await manifestOf(await kickOff(server, 'Patient/$export?_type=Patient,Observation')));
    expect(ids(all.get('Patient'))).toEqual(['ann', 'bob', 'cy']);
    expect(ids(all.get('Observation'))).toEqual(['o1', 'o2', 'o3', 'o4']);
    const group = await exported(await manifestOf(await kickOff(server, 'Group/ann-and-bob/$export')));
    expect(ids(group.get('Patient'))).toEqual(['ann', 'bob']);
    expect(ids(group.get('Observation'))).toEqual(['o1', 'o2', 'o3']);
    expect(group.has('Organization')).toBe(false);
    // A member that does not exist is left out; the others are exported.
    const ghost = await exported(await manifestOf(await kickOff(server, 'Group/with-ghost/$export')));
    expect(ids(ghost.get('Patient'))).toEqual(['cy']);
    expect(ids(ghost.get('Observation'))).toEqual(['o4']);
  });

  test('a resource in the compartments of several patients is written once: the Group of its members, an Observation one patient performed on another', async () => {
    await fhirRequest('PUT', `${server.base}/Observation/o-shared`, {
      body: { resourceType: 'Observation', id: 'o-shared', status: 'final', code: { text: 'pulse' }, subject: { reference: 'Patient/ann' }, performer: [{ reference: 'Patient/bob' }] },
    });
    try {
      const group = await exported(await manifestOf(await kickOff(server, 'Group/ann-and-bob/$export?_type=Patient,Observation,Group')));
      expect(group.get('Group')?.map((g) => g.id)).toEqual(['ann-and-bob']);
      expect(group.get('Observation')?.filter((o) => o.id === 'o-shared')).toHaveLength(1);
      const all = await exported(await manifestOf(await kickOff(server, 'Patient/$export?_type=Observation,Group')));
      expect(all.get('Group')?.map((g) => g.id).sort()).toEqual(['ann-and-bob', 'with-ghost']);
      expect(all.get('Observation')?.map((o) => o.id).sort()).toEqual(['o-shared', 'o1', 'o2', 'o3', 'o4']);
    } finally {
      await fhirRequest('DELETE', `${server.base}/Observation/o-shared`);
    }
  });

  test('a POST kick-off takes the same parameters in a Parameters body (_type may repeat)', async () => {
    const res = await fhirRequest('POST', `${server.base}/$export`, {
      headers: ASYNC,
      body: { resourceType: 'Parameters', parameter: [{ name: '_type', valueString: 'Patient' }, { name: '_type', valueString: 'Organization' }, { name: '_outputFormat', valueString: 'application/fhir+ndjson' }] },
    });
    expect(res.status).toBe(202);
    const files = await exported(await manifestOf(res.headers.get('content-location') as string));
    expect([...files.keys()].sort()).toEqual(['Organization', 'Patient']);
    const bad = await fhirRequest('POST', `${server.base}/$export`, { headers: ASYNC, body: { resourceType: 'Parameters', parameter: [{ name: '_since', valueInstant: 'not-a-time' }] } });
    expect(bad.status).toBe(400);
  });

  test('kick-off errors are 400 OperationOutcomes: no Prefer: respond-async, another format, a bad _since, _type or _typeFilter, an unsupported parameter', async () => {
    const bad = async (path: string, headers: Record<string, string> = ASYNC): Promise<void> => {
      const res = await fhirRequest('GET', `${server.base}/${path}`, { headers });
      expect(res.status).toBe(400);
      expect(res.body.resourceType).toBe('OperationOutcome');
    };
    await bad('$export', { Accept: 'application/fhir+json' });
    await bad('$export?_outputFormat=text/csv');
    await bad('$export?_since=yesterday');
    await bad('$export?_type=Patient,Wizard');
    await bad('$export?_typeFilter=Patient%3Fwizardry%3Dhigh');
    await bad('$export?_typeFilter=Observation%3Fsubject%3DPatient/ann%26_sort%3Ddate');
    await bad('$export?_typeFilter=status%3Dfinal');
    await bad('$export?includeAssociatedData=_myCustomData');
    await bad('$export?_until=2030-01-01T00:00:00Z');
    await bad('$export?_elements=name.family');
    await bad('$export?patient=Patient/ann');
    expect((await fhirRequest('GET', `${server.base}/$export?_typeFilter=x&_outputFormat=ndjson`, { headers: { ...ASYNC, Prefer: 'respond-async, handling=lenient' } })).status).toBe(202);
    expect((await fhirRequest('GET', `${server.base}/Group/nobody/$export`, { headers: ASYNC })).status).toBe(404);
  });

  test('_typeFilter keeps only the resources of a filtered type that match one of its queries, at every level; other types are whole', async () => {
    const filtered = async (path: string): Promise<Map<string, any[]>> => exported(await manifestOf(await kickOff(server, path)));
    const annOnly = encodeURIComponent('Observation?subject=Patient/ann');
    const cyOnly = encodeURIComponent('Observation?subject=Patient/cy');
    let byType = await filtered(`$export?_type=Patient,Observation&_typeFilter=${annOnly}`);
    expect(ids(byType.get('Observation'))).toEqual(['o1', 'o2']);
    expect(ids(byType.get('Patient'))).toEqual(['ann', 'bob', 'cy']);
    // Repeated, or joined by a comma: ORed.
    expect(ids((await filtered(`$export?_type=Observation&_typeFilter=${annOnly}&_typeFilter=${cyOnly}`)).get('Observation'))).toEqual(['o1', 'o2', 'o4']);
    expect(ids((await filtered(`$export?_type=Observation&_typeFilter=${annOnly},${cyOnly}`)).get('Observation'))).toEqual(['o1', 'o2', 'o4']);
    // A value with its own OR list, and a filter on a type _type leaves out.
    const twoPatients = encodeURIComponent('Patient?_id=ann,cy');
    byType = await filtered(`$export?_type=Patient&_typeFilter=${twoPatients}&_typeFilter=${annOnly}`);
    expect([...byType.keys()]).toEqual(['Patient']);
    expect(ids(byType.get('Patient'))).toEqual(['ann', 'cy']);
    // Patient and Group level: the compartment, then the filter.
    byType = await filtered(`Patient/$export?_typeFilter=${encodeURIComponent('Observation?subject=Patient/bob')}`);
    expect(ids(byType.get('Observation'))).toEqual(['o3']);
    expect(ids(byType.get('Patient'))).toEqual(['ann', 'bob', 'cy']);
    byType = await filtered(`Group/ann-and-bob/$export?_typeFilter=${annOnly}&_typeFilter=${encodeURIComponent('Patient?name=bob')}`);
    expect(ids(byType.get('Observation'))).toEqual(['o1', 'o2']);
    expect(ids(byType.get('Patient'))).toEqual(['bob']);
    // POST: the same in a Parameters body.
    const res = await fhirRequest('POST', `${server.base}/$export`, {
      headers: ASYNC,
      body: { resourceType: 'Parameters', parameter: [{ name: '_type', valueString: 'Observation' }, { name: '_typeFilter', valueString: 'Observation?subject=Patient/cy' }] },
    });
    expect(res.status).toBe(202);
    expect(ids((await exported(await manifestOf(res.headers.get('content-location') as string))).get('Observation'))).toEqual(['o4']);
  });

  test('_elements keeps the elements named for each type (and mandatory ones), tagged SUBSETTED', async () => {
    const manifest = await manifestOf(await kickOff(server, '$export?_type=Patient,Observation,Organization&_elements=Patient.name,Observation.subject,id'));
    const files = await exported(manifest);
    const subsetted = (r: any): boolean => r.meta?.tag?.some((t: any) => t.code === 'SUBSETTED');
    for (const patient of files.get('Patient') ?? []) expect(Object.keys(patient).filter((k) => k !== 'meta').sort()).toEqual(['id', 'name', 'resourceType']);
    // Observation: subject as named, status and code as mandatory; the rest (effective, value …) left out.
    for (const observation of files.get('Observation') ?? []) expect(Object.keys(observation).filter((k) => k !== 'meta').sort()).toEqual(['code', 'id', 'resourceType', 'status', 'subject']);
    // Organization: nothing named for it but id; its name is not mandatory.
    for (const organization of files.get('Organization') ?? []) expect(organization.name).toBeUndefined();
    const all = [...files.values()].flat();
    expect(all.length).toBe(ids(files.get('Patient')).length + ids(files.get('Observation')).length + ids(files.get('Organization')).length);
    expect(all.every(subsetted)).toBe(true);
    expect(ids(files.get('Patient'))).toEqual(['ann', 'bob', 'cy']);
  });

  test('patient confines a Patient or Group export to those patients (of the members), in a POST body or the query', async () => {
    const post = async (path: string, patients: string[]): Promise<Map<string, any[]>> => {
      const res = await fhirRequest('POST', `${server.base}/${path}`, {
        headers: ASYNC,
        body: { resourceType: 'Parameters', parameter: [{ name: '_type', valueString: 'Patient,Observation' }, ...patients.map((p) => ({ name: 'patient', valueReference: { reference: p } }))] },
      });
      expect(res.status).toBe(202);
      return exported(await manifestOf(res.headers.get('content-location') as string));
    };
    const some = await post('Patient/$export', ['Patient/ann', 'Patient/cy', 'Patient/ghost']);
    expect(ids(some.get('Patient'))).toEqual(['ann', 'cy']);
    expect(ids(some.get('Observation'))).toEqual(['o1', 'o2', 'o4']);
    const members = await post('Group/ann-and-bob/$export', ['Patient/bob', 'Patient/cy']);
    expect(ids(members.get('Patient'))).toEqual(['bob']);
    expect(ids(members.get('Observation'))).toEqual(['o3']);
    const query = await exported(await manifestOf(await kickOff(server, 'Patient/$export?_type=Observation&patient=Patient/bob')));
    expect(ids(query.get('Observation'))).toEqual(['o3']);
  });

  test('the error file says what was ignored (lenient) and which patients were left out, one OperationOutcome a line; none when nothing was', async () => {
    const errors = async (manifest: Manifest): Promise<any[]> => {
      expect(manifest.error.length).toBeLessThanOrEqual(1);
      const file = manifest.error[0] as { type: string; url: string; count: number } | undefined;
      if (!file) return [];
      expect(file.type).toBe('OperationOutcome');
      const res = await fetch(file.url, { headers: { Accept: 'application/fhir+ndjson' } });
      expect(res.status).toBe(200);
      const lines = (await res.text()).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
      expect(lines).toHaveLength(file.count);
      for (const line of lines) expect(line.resourceType).toBe('OperationOutcome');
      return lines.map((l) => l.issue[0]);
    };
    const lenient = { ...ASYNC, Prefer: 'respond-async, handling=lenient' };
    const ignored = await errors(await manifestOf(await kickOff(server, '$export?_type=Patient&includeAssociatedData=_myCustomData&_typeFilter=Patient%3Fwizardry%3Dhigh', lenient)));
    expect(ignored.map((i) => [i.severity, i.code, i.expression?.[0]]).sort()).toEqual([
      ['warning', 'not-supported', '_typeFilter'],
      ['warning', 'not-supported', 'includeAssociatedData'],
    ]);
    expect(ignored.find((i) => i.expression[0] === '_typeFilter').diagnostics).toMatch(/wizardry/);
    const leftOut = await errors(await manifestOf(await kickOff(server, 'Group/with-ghost/$export?_type=Patient')));
    expect(leftOut).toHaveLength(1);
    expect(leftOut[0].diagnostics).toMatch(/Patient\/ghost was left out/);
    expect(await errors(await manifestOf(await kickOff(server, '$export?_type=Patient')))).toEqual([]);
  });

  test('DELETE on the status URL cancels the export: the status URL and its files are then 404', async () => {
    const statusUrl = await kickOff(server, '$export?_type=Patient');
    const manifest = await manifestOf(statusUrl);
    expect((await fhirRequest('DELETE', statusUrl)).status).toBe(202);
    expect((await fhirRequest('GET', statusUrl)).status).toBe(404);
    expect((await fetch(manifest.output[0].url)).status).toBe(404);
  });

  test('the CapabilityStatement lists $export at system, Patient and Group level with the Bulk Data definitions', async () => {
    const metadata = (await fhirRequest('GET', `${server.base}/metadata`)).body;
    expect(metadata.instantiates).toContain('http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data');
    expect(metadata.rest[0].operation).toContainEqual({ name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export' });
    const operations = (type: string) => metadata.rest[0].resource.find((r: { type: string }) => r.type === type).operation ?? [];
    expect(operations('Patient')).toContainEqual({ name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export' });
    expect(operations('Group')).toContainEqual({ name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export' });
    expect(operations('Observation')).not.toContainEqual(expect.objectContaining({ name: 'export' }));
  });
});

describe('with tokens', () => {
  let server: TestServer;
  let backend: string;
  beforeAll(async () => {
    server = await startTestServer({ AUTH_REQUIRED: 'true', SEARCH_PARAMETER_REFRESH_MS: '100' });
    backend = await mintToken(server, { scope: 'system/*.cruds', clientId: 'lab-analytics' });
    const put = (resource: any) => fhirRequest('PUT', `${server.base}/${resource.resourceType}/${resource.id}`, { body: resource, headers: { Authorization: `Bearer ${backend}` } });
    for (const id of ['dee', 'eve']) await put({ resourceType: 'Patient', id });
    await put({ resourceType: 'Observation', id: 'dee-1', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/dee' } });
    await put({ resourceType: 'Observation', id: 'eve-1', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/eve' } });
  });
  afterAll(async () => {
    await server.stop();
  });

  test('a backend service exports with its token; the status URL and the files are its own: other clients get 404, no token 401', async () => {
    const auth = { Authorization: `Bearer ${backend}` };
    const statusUrl = await kickOff(server, '$export?_type=Patient,Observation', auth);
    const manifest = await manifestOf(statusUrl, auth);
    expect(manifest.requiresAccessToken).toBe(true);
    const files = await exported(manifest, auth);
    expect(ids(files.get('Observation'))).toEqual(['dee-1', 'eve-1']);
    const other = await mintToken(server, { scope: 'system/*.read', clientId: 'someone-else' });
    expect((await fhirRequest('GET', statusUrl, { headers: { Authorization: `Bearer ${other}` } })).status).toBe(404);
    expect((await fetch(manifest.output[0].url, { headers: { Authorization: `Bearer ${other}` } })).status).toBe(404);
    expect((await fetch(manifest.output[0].url)).status).toBe(401);
  });

  test("a patient's export holds only what the token may read: its own compartment", async () => {
    const patient = await mintToken(server, { scope: 'patient/*.read', clientId: 'portal', userId: 'u-dee', fhirUser: 'Patient/dee', role: 'patient', patient: 'dee' });
    const auth = { Authorization: `Bearer ${patient}` };
    const files = await exported(await manifestOf(await kickOff(server, 'Patient/$export?_type=Patient,Observation', auth), auth), auth);
    expect(ids(files.get('Patient'))).toEqual(['dee']);
    expect(ids(files.get('Observation'))).toEqual(['dee-1']);
  });
});
