import { isBlocking, validateResource } from '../../server/validation/validate-resource';
import { fhirRequest, searchAllPages } from '../support/fhir-client';
import { loadSyntheaPatients } from '../support/synthea-load';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * `Observation/$stats` (R4 observation-operation-stats) on Synthea patients, each
 * statistic compared with the same statistic computed in this file from the patient's
 * Observations read by a plain search; and on Observations written for the rules the
 * Synthea records do not exercise (a window of hours, panels by components and by
 * members, a regression with a known line, units, comparators, entered-in-error).
 */
type Obs = { resourceType: 'Observation'; id: string; [key: string]: any };

let server: TestServer;
const patients: string[] = [];
const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const ALL = ['average', 'maximum', 'minimum', 'count', 'total-count', 'median', 'std-dev', 'sum', 'variance', '20-percent', '80-percent', '4-lower', '4-upper', '4-dev', '5-1', '5-2', '5-3', '5-4', 'skew', 'kurtosis'];

async function stats(query: string, status = 200): Promise<any> {
  const res = await fhirRequest('GET', `${server.base}/Observation/$stats?${query}`);
  expect({ query, status: res.status }).toEqual({ query, status });
  return res.body;
}

/** statistic code (with the component's text for regression) → value, dataAbsentReason code, or integer. */
function components(observation: any): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const c of observation.component) {
    const name = c.code.coding[0].code + (c.code.text ? ` ${c.code.text}` : '');
    out[name] = c.valueQuantity?.value ?? c.valueInteger ?? c.dataAbsentReason.coding[0].code;
  }
  return out;
}

function statisticsFor(body: any, code: string): any {
  const found = body.parameter.filter((p: any) => p.name === 'statistics' && p.resource.code.coding[0].code === code);
  expect({ code, count: found.length }).toEqual({ code, count: 1 });
  return found[0].resource;
}

async function allObservations(subject: string): Promise<Obs[]> {
  return searchAllPages<Obs>(`${server.base}/Observation?subject=${subject}&_count=500`);
}

/** The textbook formulas, written out again here. */
function expected(values: number[]): Record<string, number | string> {
  const n = values.length;
  const x = [...values].sort((a, b) => a - b);
  const mean = x.reduce((a, b) => a + b, 0) / n;
  const pct = (p: number): number => {
    const rank = p * (n - 1);
    const below = Math.floor(rank);
    return below === n - 1 ? x[below] : x[below] + (rank - below) * (x[below + 1] - x[below]);
  };
  const ss = x.reduce((a, v) => a + (v - mean) ** 2, 0);
  const variance = ss / (n - 1);
  const sd = Math.sqrt(variance);
  const m3 = x.reduce((a, v) => a + ((v - mean) / sd) ** 3, 0);
  const m4 = x.reduce((a, v) => a + ((v - mean) / sd) ** 4, 0);
  return {
    average: mean,
    maximum: x[n - 1],
    minimum: x[0],
    count: n,
    median: pct(0.5),
    'std-dev': n < 2 ? 'not-applicable' : sd,
    sum: x.reduce((a, b) => a + b, 0),
    variance: n < 2 ? 'not-applicable' : variance,
    '20-percent': pct(0.2),
    '80-percent': pct(0.8),
    '4-lower': pct(0.25),
    '4-upper': pct(0.75),
    '4-dev': (pct(0.75) - pct(0.25)) / 2,
    '5-1': pct(0.2),
    '5-2': pct(0.4),
    '5-3': pct(0.6),
    '5-4': pct(0.8),
    skew: n < 3 ? 'not-applicable' : sd === 0 ? 'not-a-number' : (n / ((n - 1) * (n - 2))) * m3,
    kurtosis: n < 4 ? 'not-applicable' : sd === 0 ? 'not-a-number' : ((n * (n + 1)) / ((n - 1) * (n - 2) * (n - 3))) * m4 - (3 * (n - 1) ** 2) / ((n - 2) * (n - 3)),
  };
}

function expectClose(got: Record<string, number | string>, want: Record<string, number | string>, label: string): void {
  for (const [name, value] of Object.entries(want)) {
    const actual = got[name];
    if (typeof value === 'number' && typeof actual === 'number') {
      expect({ label, name, close: Math.abs(actual - value) <= 1e-6 * Math.max(1, Math.abs(value)) }).toEqual({ label, name, close: true });
    } else {
      expect({ label, name, actual }).toEqual({ label, name, actual: value });
    }
  }
}

async function put(resource: Record<string, unknown>): Promise<void> {
  const res = await fhirRequest('PUT', `${server.base}/${resource.resourceType}/${resource.id}`, { body: resource });
  expect({ id: resource.id, status: res.status < 300 }).toEqual({ id: resource.id, status: true });
}

const quantity = (value: number, code = 'kg', extra: Record<string, unknown> = {}) => ({ value, unit: code, system: UCUM, code, ...extra });
const loinc = (code: string) => ({ coding: [{ system: LOINC, code }] });
const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();

beforeAll(async () => {
  server = await startTestServer();
  patients.push(...(await loadSyntheaPatients(server.base, 2)));
  await put({ resourceType: 'Patient', id: 'st-patient' });
  const subject = { reference: 'Patient/st-patient' };
  const obs = (id: string, rest: Record<string, unknown>) => put({ resourceType: 'Observation', id, status: 'final', subject, ...rest });
  // Weights: the last hour has two, the last day five; one in grams, one "<", one entered in error, one without a value.
  await obs('w-1', { code: loinc('29463-7'), effectiveDateTime: hoursAgo(0.5), valueQuantity: quantity(80) });
  await obs('w-2', { code: loinc('29463-7'), effectiveDateTime: hoursAgo(0.75), valueQuantity: quantity(82) });
  await obs('w-3', { code: loinc('29463-7'), effectiveDateTime: hoursAgo(5), valueQuantity: quantity(84) });
  await obs('w-grams', { code: loinc('29463-7'), effectiveDateTime: hoursAgo(6), valueQuantity: quantity(85000, 'g') });
  await obs('w-less', { code: loinc('29463-7'), effectiveDateTime: hoursAgo(7), valueQuantity: quantity(50, 'kg', { comparator: '<' }) });
  await obs('w-error', { code: loinc('29463-7'), status: 'entered-in-error', effectiveDateTime: hoursAgo(8), valueQuantity: quantity(999) });
  await obs('w-none', { code: loinc('29463-7'), effectiveDateTime: hoursAgo(9), dataAbsentReason: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'unknown' }] } });
  // A blood pressure panel by components, and a panel by members.
  const bp = (id: string, sys: number, dia: number, at: string) =>
    obs(id, {
      code: loinc('85354-9'),
      effectiveDateTime: at,
      component: [
        { code: loinc('8480-6'), valueQuantity: quantity(sys, 'mm[Hg]') },
        { code: loinc('8462-4'), valueQuantity: quantity(dia, 'mm[Hg]') },
      ],
    });
  await bp('bp-1', 120, 80, '2024-01-01T08:00:00Z');
  await bp('bp-2', 130, 90, '2024-01-01T09:00:00Z');
  await obs('m-glucose', { code: loinc('2339-0'), effectiveDateTime: '2024-02-01T08:00:00Z', valueQuantity: quantity(5.5, 'mmol/L') });
  await obs('m-sodium', { code: loinc('2951-2'), effectiveDateTime: '2024-02-01T08:00:00Z', valueQuantity: quantity(140, 'mmol/L') });
  await obs('m-panel', { code: loinc('24323-8'), effectiveDateTime: '2024-02-01T08:00:00Z', hasMember: [{ reference: 'Observation/m-glucose' }, { reference: 'Observation/m-sodium' }] });
  // A line: 10 + 2 per hour from the period's start.
  for (const [i, h] of [0, 1, 2, 5].entries()) {
    await obs(`line-${i}`, { code: loinc('2710-2'), effectiveDateTime: new Date(Date.UTC(2024, 2, 1, h)).toISOString(), valueQuantity: quantity(10 + 2 * h, '%') });
  }
}, 300000);

afterAll(async () => {
  await server?.stop();
});

test('for Synthea patients, every statistic of their most measured codes equals the one computed from all their Observations of that code', async () => {
  let compared = 0;
  for (const patient of patients) {
    const all = await allObservations(`Patient/${patient}`);
    const byCode = new Map<string, number[]>();
    for (const o of all) {
      const code = o.code?.coding?.find((c: any) => c.system === LOINC)?.code;
      if (!code || o.status === 'entered-in-error' || o.valueQuantity?.system !== UCUM || typeof o.valueQuantity?.value !== 'number' || o.valueQuantity.comparator) continue;
      byCode.set(code, [...(byCode.get(code) ?? []), o.valueQuantity.value]);
    }
    const most = [...byCode.entries()].sort((a, b) => b[1].length - a[1].length).slice(0, 3);
    expect(most.length).toBeGreaterThan(0);
    const body = await stats(`subject=Patient/${patient}&system=${encodeURIComponent(LOINC)}&code=${most.map(([c]) => c).join(',')}&statistic=${ALL.join(',')}`);
    for (const [code, values] of most) {
      // What the server returns is a valid R4 Observation.
      expect(validateResource(statisticsFor(body, code)).filter(isBlocking)).toEqual([]);
      const got = components(statisticsFor(body, code));
      expectClose(got, expected(values), `${patient} ${code}`);
      compared++;
    }
  }
  expect(compared).toBeGreaterThanOrEqual(2);
}, 120000);

test('duration counts the last hours only; a comparator, another unit, no value and entered-in-error are left out of the values, and total-count counts every measurement', async () => {
  const lastHour = components(statisticsFor(await stats('subject=Patient/st-patient&coding=http://loinc.org|29463-7&duration=1&statistic=average,count,total-count'), '29463-7'));
  expect(lastHour).toEqual({ average: 81, count: 2, 'total-count': 2 });
  const lastDay = components(statisticsFor(await stats('subject=Patient/st-patient&coding=http://loinc.org|29463-7&duration=24&statistic=average,count,total-count,maximum'), '29463-7'));
  expect(lastDay).toEqual({ average: 82, count: 3, 'total-count': 6, maximum: 84 });
});

test('a panel asked for gives the statistics of each part: components by their code, members by theirs', async () => {
  const byComponents = await stats('subject=Patient/st-patient&system=http://loinc.org&code=85354-9&statistic=average,minimum');
  expect(components(statisticsFor(byComponents, '8480-6'))).toEqual({ average: 125, minimum: 120 });
  expect(components(statisticsFor(byComponents, '8462-4'))).toEqual({ average: 85, minimum: 80 });
  expect(byComponents.parameter.filter((p: any) => p.name === 'statistics')).toHaveLength(2);
  // A component code asked for on its own is found inside the panels.
  expect(components(statisticsFor(await stats('subject=Patient/st-patient&coding=http://loinc.org|8480-6&statistic=maximum'), '8480-6'))).toEqual({ maximum: 130 });
  const byMembers = await stats('subject=Patient/st-patient&coding=http://loinc.org|24323-8&statistic=average&include=true');
  expect(components(statisticsFor(byMembers, '2339-0'))).toEqual({ average: 5.5 });
  expect(components(statisticsFor(byMembers, '2951-2'))).toEqual({ average: 140 });
  expect(byMembers.parameter.filter((p: any) => p.name === 'source').map((p: any) => p.resource.id).sort()).toEqual(['m-glucose', 'm-panel', 'm-sodium']);
});

test('regression gives the change per hour and the value at the start of the period; the statistics Observation carries the code, subject and period', async () => {
  const body = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'subject', valueString: 'Patient/st-patient' },
      { name: 'coding', valueCoding: { system: LOINC, code: '2710-2' } },
      { name: 'period', valuePeriod: { start: '2024-03-01T00:00:00Z', end: '2024-03-02T00:00:00Z' } },
      { name: 'statistic', valueCode: 'regression' },
      { name: 'statistic', valueCode: 'count' },
    ],
  };
  const res = await fhirRequest('POST', `${server.base}/Observation/$stats`, { body });
  expect(res.status).toBe(200);
  const observation = statisticsFor(res.body, '2710-2');
  expect(observation).toMatchObject({
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: LOINC, code: '2710-2' }] },
    subject: { reference: 'Patient/st-patient' },
    effectivePeriod: { start: '2024-03-01T00:00:00Z', end: '2024-03-02T00:00:00Z' },
  });
  const got = components(observation);
  expect(got['regression gradient per hour']).toBeCloseTo(2, 9);
  expect(got['regression intercept at the start of the period']).toBeCloseTo(10, 9);
  expect(got.count).toBe(4);
  expect(observation.component[0].valueQuantity).toMatchObject({ system: UCUM, code: '%/h' });
});

test('a code with nothing recorded is answered with a count of 0; include with limit returns the most recent sources', async () => {
  const none = components(statisticsFor(await stats('subject=Patient/st-patient&coding=http://loinc.org|8302-2&statistic=count,average'), '8302-2'));
  expect(none).toEqual({ count: 0, average: 'not-applicable' });
  const limited = await stats('subject=Patient/st-patient&coding=http://loinc.org|29463-7&statistic=count&include=true&limit=2');
  expect(limited.parameter.filter((p: any) => p.name === 'source').map((p: any) => p.resource.id)).toEqual(['w-1', 'w-2']);
});

test('missing or malformed inputs are 400s naming the parameter; an unknown subject is a 404', async () => {
  const cases: [string, string][] = [
    ['coding=http://loinc.org|29463-7&statistic=count', 'subject'],
    ['subject=Patient/st-patient&statistic=count', 'code'],
    ['subject=Patient/st-patient&code=29463-7&statistic=count', 'system'],
    ['subject=Patient/st-patient&coding=http://loinc.org|29463-7', 'statistic'],
    ['subject=Patient/st-patient&coding=http://loinc.org|29463-7&statistic=mode', 'statistic'],
    ['subject=Patient/st-patient&coding=http://loinc.org|29463-7&statistic=count&duration=-1', 'duration'],
    ['subject=http://elsewhere.example/fhir/Patient/1&coding=http://loinc.org|29463-7&statistic=count', 'subject'],
  ];
  for (const [query, named] of cases) {
    const body = await stats(query, 400);
    expect({ query, type: body.resourceType, names: JSON.stringify(body.issue).includes(named) }).toEqual({ query, type: 'OperationOutcome', names: true });
  }
  await stats('subject=Patient/nobody&coding=http://loinc.org|29463-7&statistic=count', 404);
  // The server's own base URL is accepted as a subject.
  expect(components(statisticsFor(await stats(`subject=${encodeURIComponent(`${server.base}/Patient/st-patient`)}&coding=http://loinc.org|29463-7&statistic=count&duration=1`), '29463-7'))).toEqual({ count: 2 });
});

test('the CapabilityStatement lists stats on Observation with HL7’s definition', async () => {
  const statement = (await fhirRequest('GET', `${server.base}/metadata`)).body;
  const observation = statement.rest[0].resource.find((r: { type: string }) => r.type === 'Observation');
  expect(observation.operation).toContainEqual({ name: 'stats', definition: 'http://hl7.org/fhir/OperationDefinition/Observation-stats' });
});
