import { fhirRequest } from '../support/fhir-client';
import { loadSyntheaPatients } from '../support/synthea-load';
import { startTestServer, type TestServer } from '../support/test-server';

/** Bulk Data 2.0 `includeAssociatedData` (export.html, CodeSystem include-associated-data). */

interface Manifest {
  output: { type: string; url: string; count: number }[];
  error: { type: string; url: string; count: number }[];
}

let server: TestServer;
const patients: string[] = [];

beforeAll(async () => {
  server = await startTestServer();
  patients.push(...(await loadSyntheaPatients(server.base, 2)));
  // Besides Synthea's one Provenance per patient bundle: two more on the first patient, one recorded before it, one after.
  for (const recorded of ['1990-01-01T00:00:00Z', '2030-01-01T00:00:00Z']) {
    const res = await fhirRequest('POST', `${server.base}/Provenance`, {
      body: { resourceType: 'Provenance', target: [{ reference: `Patient/${patients[0]}` }], recorded, agent: [{ who: { display: 'test' } }] },
    });
    expect(res.status).toBe(201);
  }
}, 120_000);
afterAll(async () => {
  await server.stop();
});

async function exportOf(path: string, headers: Record<string, string> = {}): Promise<{ byType: Map<string, any[]>; manifest: Manifest }> {
  const kick = await fhirRequest('GET', `${server.base}/${path}`, { headers: { Prefer: 'respond-async', ...headers } });
  expect(kick.status).toBe(202);
  const status = kick.headers.get('content-location') as string;
  const deadline = Date.now() + 60_000;
  let manifest: Manifest;
  for (;;) {
    const res = await fhirRequest('GET', status, { headers: { Accept: 'application/json' } });
    if (res.status === 200) {
      manifest = res.body;
      break;
    }
    expect(res.status).toBe(202);
    if (Date.now() > deadline) throw new Error('export did not finish');
    await new Promise((r) => setTimeout(r, 200));
  }
  const byType = new Map<string, any[]>();
  for (const file of manifest.output) {
    const lines = (await (await fetch(file.url)).text()).split('\n').filter((l) => l !== '');
    byType.set(file.type, [...(byType.get(file.type) ?? []), ...lines.map((l) => JSON.parse(l))]);
  }
  return { byType, manifest };
}

/** Every Provenance stored, read by plain search: the oracle's input. */
async function allProvenance(): Promise<any[]> {
  const found: any[] = [];
  let next: string | undefined = `${server.base}/Provenance?_count=500`;
  while (next) {
    const page: any = (await fhirRequest('GET', next)).body;
    found.push(...(page.entry ?? []).map((e: any) => e.resource));
    next = page.link?.find((l: any) => l.relation === 'next')?.url;
  }
  return found;
}

const key = (r: any): string => `${r.resourceType}/${r.id}`;
const targetsOf = (p: any): string[] => (p.target ?? []).map((t: any) => /([A-Za-z]+\/[^/]+)(\/_history\/.*)?$/.exec(t.reference)?.[1]);
const nonProvenance = (byType: Map<string, any[]>): Set<string> =>
  new Set([...byType].filter(([type]) => type !== 'Provenance').flatMap(([, resources]) => resources.map(key)));
const sortedIds = (resources: any[] | undefined): string[] => (resources ?? []).map((r) => r.id).sort();

test('RelevantProvenanceResources adds every Provenance that targets an exported resource, each once, and no other', async () => {
  const { byType } = await exportOf('$export?_type=Patient,Encounter&includeAssociatedData=RelevantProvenanceResources');
  const exportedKeys = nonProvenance(byType);
  expect(byType.get('Patient')).toHaveLength(2);
  expect(byType.get('Encounter')?.length).toBeGreaterThan(0);
  const expected = (await allProvenance()).filter((p) => targetsOf(p).some((t) => exportedKeys.has(t)));
  expect(expected.length).toBe(4);
  expect(sortedIds(byType.get('Provenance'))).toEqual(sortedIds(expected));
});

test('LatestProvenanceResources adds, for each exported resource, only the Provenance recorded last that targets it', async () => {
  const { byType } = await exportOf('$export?_type=Patient&includeAssociatedData=LatestProvenanceResources');
  const provenance = await allProvenance();
  const expected = new Set<string>();
  for (const patient of byType.get('Patient') ?? []) {
    const naming = provenance.filter((p) => targetsOf(p).includes(key(patient)));
    naming.sort((a, b) => Date.parse(b.recorded) - Date.parse(a.recorded));
    if (naming[0]) expected.add(naming[0].id);
  }
  expect(expected.size).toBe(2);
  expect(sortedIds(byType.get('Provenance'))).toEqual([...expected].sort());
  // The first patient's latest is the one recorded in 2030, not Synthea's nor the 1990 one.
  expect(byType.get('Provenance')?.some((p) => p.recorded === '2030-01-01T00:00:00Z')).toBe(true);
  expect(byType.get('Provenance')?.some((p) => p.recorded === '1990-01-01T00:00:00Z')).toBe(false);
});

test('at Patient level, a Provenance exported as part of the compartment and as associated data is in the files once', async () => {
  const plain = await exportOf('Patient/$export');
  const { byType } = await exportOf('Patient/$export?includeAssociatedData=RelevantProvenanceResources,LatestProvenanceResources');
  const exportedKeys = nonProvenance(byType);
  const expected = new Set([...sortedIds(plain.byType.get('Provenance')), ...(await allProvenance()).filter((p) => targetsOf(p).some((t) => exportedKeys.has(t))).map((p) => p.id)]);
  const ids = (byType.get('Provenance') ?? []).map((p) => p.id);
  expect(new Set(ids).size).toBe(ids.length);
  expect(ids.sort()).toEqual([...expected].sort());
});

test('without includeAssociatedData no Provenance is added; a POST kick-off takes it as valueCode', async () => {
  const { byType } = await exportOf('$export?_type=Patient');
  expect(byType.has('Provenance')).toBe(false);
  const kick = await fhirRequest('POST', `${server.base}/$export`, {
    headers: { Prefer: 'respond-async' },
    body: { resourceType: 'Parameters', parameter: [{ name: '_type', valueString: 'Patient' }, { name: 'includeAssociatedData', valueCode: 'LatestProvenanceResources' }] },
  });
  expect(kick.status).toBe(202);
});

test('an includeAssociatedData value not supported is a 400 naming it; with Prefer: handling=lenient it is ignored and the error file says so', async () => {
  const refused = await fhirRequest('GET', `${server.base}/$export?includeAssociatedData=_myCustomData`, { headers: { Prefer: 'respond-async' } });
  expect(refused.status).toBe(400);
  expect(refused.body.issue[0].expression).toEqual(['includeAssociatedData']);
  const { byType, manifest } = await exportOf('$export?_type=Patient&includeAssociatedData=_myCustomData,RelevantProvenanceResources', { Prefer: 'respond-async, handling=lenient' });
  expect(byType.get('Provenance')?.length).toBeGreaterThan(0);
  expect(manifest.error).toHaveLength(1);
  const errors = (await (await fetch(manifest.error[0].url)).text()).trim().split('\n').map((l) => JSON.parse(l));
  expect(errors.map((o) => o.issue[0].diagnostics).join(' ')).toMatch(/_myCustomData/);
});
