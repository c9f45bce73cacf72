import { fhirRequest, searchAllPages } from '../support/fhir-client';
import { loadSyntheaPatients } from '../support/synthea-load';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * `Observation/$lastn` (R4 observation-operation-lastn) on Synthea patients, each answer
 * compared with the patient's Observations read by a plain search and grouped and cut in
 * this file by the operation's rules written out again; and on Observations written to
 * cover each rule (codes joined through a shared coding, text-only codes, ties, Periods,
 * entered-in-error).
 */
type Obs = { resourceType: 'Observation'; id: string; [key: string]: any };

let server: TestServer;
const patients: string[] = [];
const VITAL_SIGNS = 'http://terminology.hl7.org/CodeSystem/observation-category|vital-signs';
const LAB = 'http://terminology.hl7.org/CodeSystem/observation-category|laboratory';

async function get(path: string): Promise<{ status: number; body: any }> {
  return fhirRequest('GET', `${server.base}/${path}`);
}

async function lastn(query: string): Promise<Obs[]> {
  const res = await get(`Observation/$lastn?${query}`);
  expect({ query, status: res.status }).toEqual({ query, status: 200 });
  expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: (res.body.entry ?? []).length });
  return (res.body.entry ?? []).map((e: { resource: Obs; search: { mode: string } }) => {
    expect(e.search.mode).toBe('match');
    return e.resource;
  });
}

async function allObservations(query: string): Promise<Obs[]> {
  return searchAllPages<Obs>(`${server.base}/Observation?${query}&_count=500`);
}

/** The operation's rules, written out independently of the server's code. */
function oracle(observations: Obs[], max: number): string[] {
  const keys = (o: Obs): string[] => {
    const codings = (o.code?.coding ?? []).filter((c: any) => c.code).map((c: any) => `${c.system ?? ''}|${c.code}`);
    return codings.length > 0 ? codings : o.code?.text ? [`text ${o.code.text}`] : [`id ${o.id}`];
  };
  const groups: { keys: Set<string>; members: Obs[] }[] = [];
  for (const o of observations) {
    const mine = keys(o);
    const joined = groups.filter((g) => mine.some((k) => g.keys.has(k)));
    const merged = { keys: new Set([...mine, ...joined.flatMap((g) => [...g.keys])]), members: [o, ...joined.flatMap((g) => g.members)] };
    for (const g of joined) groups.splice(groups.indexOf(g), 1);
    groups.push(merged);
  }
  const when = (o: Obs): number => {
    const value = o.effectiveDateTime ?? o.effectiveInstant ?? o.effectivePeriod?.end ?? o.effectivePeriod?.start ?? o.issued;
    return value === undefined ? -Infinity : Date.parse(value.length === 4 ? `${value}-01-01` : value);
  };
  return groups.flatMap((g) => {
    const sorted = [...g.members].sort((a, b) => when(b) - when(a));
    const cut = sorted.length > max ? when(sorted[max - 1]) : -Infinity;
    return sorted.filter((o, i) => i < max || when(o) === cut).map((o) => o.id);
  });
}

const sorted = (ids: string[]): string[] => [...ids].sort();

async function put(resource: Record<string, unknown>): Promise<void> {
  const res = await fhirRequest('PUT', `${server.base}/${resource.resourceType}/${resource.id}`, { body: resource });
  expect(res.status).toBeLessThan(300);
}

beforeAll(async () => {
  server = await startTestServer();
  patients.push(...(await loadSyntheaPatients(server.base, 3)));
  await put({ resourceType: 'Patient', id: 'ln-patient' });
  await put({ resourceType: 'Patient', id: 'ln-other' });
  const obs = (id: string, code: Record<string, unknown>, effective: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    put({ resourceType: 'Observation', id, status: 'final', category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }], subject: { reference: 'Patient/ln-patient' }, code, ...effective, ...extra });
  const coding = (...codes: string[]) => ({ coding: codes.map((c) => ({ system: 'http://example.org/codes', code: c })) });
  // a, b and (a, c): a and c are one code through the third; b is its own.
  await obs('a-1', coding('a'), { effectiveDateTime: '2020-01-01T10:00:00Z' });
  await obs('a-2', coding('a'), { effectiveDateTime: '2021-01-01T10:00:00Z' });
  await obs('ac-1', coding('a', 'c'), { effectiveDateTime: '2020-06-01T10:00:00Z' });
  await obs('c-1', coding('c'), { effectiveDateTime: '2022-01-01T10:00:00Z' });
  await obs('b-1', coding('b'), { effectiveDateTime: '2019-01-01T10:00:00Z' });
  await obs('b-2', coding('b'), { effectiveDateTime: '2018-01-01T10:00:00Z' });
  // Text alone: three codes, as the operation's own example says.
  await obs('t-1', { text: 'text' }, { effectiveDateTime: '2020-01-01' });
  await obs('t-2', { text: 'Text' }, { effectiveDateTime: '2020-01-01' });
  await obs('t-3', { text: 't e x t' }, { effectiveDateTime: '2020-01-01' });
  // Ties at the cut are all returned; a Period counts by its end.
  await obs('x-1', coding('x'), { effectiveDateTime: '2023-05-05T05:05:05Z' });
  await obs('x-2', coding('x'), { effectiveDateTime: '2023-05-05T05:05:05Z' });
  await obs('x-3', coding('x'), { effectivePeriod: { start: '2020-01-01T00:00:00Z', end: '2023-05-05T05:05:05Z' } });
  await obs('x-old', coding('x'), { effectivePeriod: { start: '2022-01-01T00:00:00Z', end: '2022-01-02T00:00:00Z' } });
  // entered-in-error is not left out unless the query says so.
  await obs('e-1', coding('e'), { effectiveDateTime: '2020-01-01T00:00:00Z' });
  await obs('e-2', coding('e'), { effectiveDateTime: '2024-01-01T00:00:00Z' }, { status: 'entered-in-error' });
  // Another patient's: never in ln-patient's answer.
  await put({ resourceType: 'Observation', id: 'other-1', status: 'final', subject: { reference: 'Patient/ln-other' }, code: coding('a'), effectiveDateTime: '2030-01-01T00:00:00Z' });
}, 300000);

afterAll(async () => {
  await server?.stop();
});

test('for Synthea patients, the last 1 and the last 3 per code of a category are those the rules pick from all of the patient’s Observations of it', async () => {
  let compared = 0;
  for (const patient of patients) {
    for (const category of [VITAL_SIGNS, LAB]) {
      const all = await allObservations(`patient=Patient/${patient}&category=${encodeURIComponent(category)}`);
      for (const max of [1, 3]) {
        const got = await lastn(`patient=Patient/${patient}&category=${encodeURIComponent(category)}${max === 1 ? '' : `&max=${max}`}`);
        expect({ patient, category, max, ids: sorted(got.map((o) => o.id)) }).toEqual({ patient, category, max, ids: sorted(oracle(all, max)) });
        compared += got.length;
      }
    }
  }
  // Synthea's records have vital signs and labs: the comparison is not over empty sets.
  expect(compared).toBeGreaterThan(50);
}, 120000);

test('a code parameter narrows the groups to that code, by patient or by subject', async () => {
  const patient = patients[0];
  const all = await allObservations(`patient=Patient/${patient}&code=${encodeURIComponent('http://loinc.org|8867-4')}`);
  expect(all.length).toBeGreaterThan(1);
  const byPatient = await lastn(`patient=${patient}&code=${encodeURIComponent('http://loinc.org|8867-4')}&max=2`);
  expect(sorted(byPatient.map((o) => o.id))).toEqual(sorted(oracle(all, 2)));
  const bySubject = await lastn(`subject=Patient/${patient}&code=${encodeURIComponent('http://loinc.org|8867-4')}&max=2`);
  expect(sorted(bySubject.map((o) => o.id))).toEqual(sorted(byPatient.map((o) => o.id)));
});

test('codes that share a coding are one group, text-only codes group by their exact text, and each group comes most recent first', async () => {
  const got = (await lastn(`patient=ln-patient&category=${encodeURIComponent(VITAL_SIGNS)}&max=2`)).map((o) => o.id);
  const a = got.filter((id) => ['a-1', 'a-2', 'ac-1', 'c-1'].includes(id));
  expect(a).toEqual(['c-1', 'a-2']);
  expect(got.filter((id) => id.startsWith('b-'))).toEqual(['b-1', 'b-2']);
  expect(sorted(got.filter((id) => id.startsWith('t-')))).toEqual(['t-1', 't-2', 't-3']);
  expect(got).not.toContain('other-1');
  // Groups follow one another, in the order of their most recent Observation.
  expect(got.indexOf('c-1')).toBeLessThan(got.indexOf('b-1'));
  expect(got.indexOf('a-2')).toBe(got.indexOf('c-1') + 1);
});

test('Observations tied with the last one kept are all returned, a Period counting by its end', async () => {
  const one = (await lastn(`patient=ln-patient&code=${encodeURIComponent('http://example.org/codes|x')}`)).map((o) => o.id);
  expect(sorted(one)).toEqual(['x-1', 'x-2', 'x-3']);
  const four = (await lastn(`patient=ln-patient&code=${encodeURIComponent('http://example.org/codes|x')}&max=4`)).map((o) => o.id);
  expect(four[3]).toBe('x-old');
});

test('entered-in-error is returned unless the status parameter leaves it out', async () => {
  const code = encodeURIComponent('http://example.org/codes|e');
  expect((await lastn(`patient=ln-patient&code=${code}`)).map((o) => o.id)).toEqual(['e-2']);
  expect((await lastn(`patient=ln-patient&code=${code}&status=final`)).map((o) => o.id)).toEqual(['e-1']);
});

test('POST with a form or a Parameters resource answers as GET does; _elements applies to the entries', async () => {
  const query = `patient=ln-patient&category=${encodeURIComponent(VITAL_SIGNS)}&max=2`;
  const expected = (await lastn(query)).map((o) => o.id);
  const form = await fetch(`${server.base}/Observation/$lastn`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: query });
  expect(form.status).toBe(200);
  expect(((await form.json()).entry ?? []).map((e: { resource: Obs }) => e.resource.id)).toEqual(expected);
  const parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'patient', valueReference: { reference: 'Patient/ln-patient' } },
      { name: 'category', valueString: VITAL_SIGNS },
      { name: 'max', valuePositiveInt: 2 },
    ],
  };
  const posted = await fhirRequest('POST', `${server.base}/Observation/$lastn`, { body: parameters });
  expect(posted.status).toBe(200);
  expect((posted.body.entry ?? []).map((e: { resource: Obs }) => e.resource.id)).toEqual(expected);
  const trimmed = await lastn(`${query}&_elements=code`);
  expect(Object.keys(trimmed[0]).sort()).toEqual(['code', 'id', 'meta', 'resourceType', 'status']);
});

test('a request without a subject, without a category or code, or with a bad max or a result parameter is a 400 naming it', async () => {
  const cases: [string, string][] = [
    [`category=${encodeURIComponent(VITAL_SIGNS)}`, 'patient'],
    ['patient=ln-patient', 'code'],
    ['patient=ln-patient&status=final', 'code'],
    ['patient=ln-patient&category=vital-signs&max=0', 'max'],
    ['patient=ln-patient&category=vital-signs&max=two', 'max'],
    ['patient=ln-patient&category=vital-signs&_sort=date', '_sort'],
    ['patient=ln-patient&category=vital-signs&_count=5', '_count'],
  ];
  for (const [query, named] of cases) {
    const res = await get(`Observation/$lastn?${query}`);
    expect({ query, status: res.status, type: res.body.resourceType }).toEqual({ query, status: 400, type: 'OperationOutcome' });
    expect(JSON.stringify(res.body.issue)).toContain(named);
  }
  // No match is an empty searchset, not an error.
  expect(await lastn('patient=ln-other&category=laboratory')).toEqual([]);
});

test('the CapabilityStatement lists lastn on Observation with HL7’s definition', async () => {
  const statement = (await get('metadata')).body;
  const observation = statement.rest[0].resource.find((r: { type: string }) => r.type === 'Observation');
  expect(observation.operation).toContainEqual({ name: 'lastn', definition: 'http://hl7.org/fhir/OperationDefinition/Observation-lastn' });
});
