import type { Bundle, Observation } from '@medplum/fhirtypes';
import { extractIndexValues } from '../../server/search/extract-index-values';
import { createKnex } from '../../server/storage/database';
import { syncIndexColumns } from '../../server/storage/sync-index-columns';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * `Observation?patient=…&code=…` is answered through the (patient, code) pair column
 * (search/pair-columns.ts): it must find exactly what the two filters select, follow
 * updates and deletes, and be filled for rows written before the column existed.
 */
let server: TestServer;
let patients: string[];
const observations: { id: string; patient: number; system?: string; code: string }[] = [];

async function post(type: string, body: Record<string, unknown>): Promise<string> {
  const res = await fhirRequest('POST', `${server.base}/${type}`, { body: { resourceType: type, ...body } });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function found(query: string): Promise<string[]> {
  const res = await fhirRequest('GET', `${server.base}/Observation?${query}&_count=100`);
  expect(res.status).toBe(200);
  return ((res.body as Bundle).entry ?? []).map((e) => e.resource?.id as string).sort();
}

function expected(patient: number[], match: (o: (typeof observations)[number]) => boolean): string[] {
  return observations.filter((o) => patient.includes(o.patient) && match(o)).map((o) => o.id).sort();
}

beforeAll(async () => {
  server = await startTestServer();
  patients = [await post('Patient', { name: [{ family: 'PairA' }] }), await post('Patient', { name: [{ family: 'PairB' }] })];
  for (let i = 0; i < 30; i++) {
    const o = { patient: i % 2, system: i % 5 === 0 ? undefined : 'http://loinc.org', code: ['8867-4', '8302-2', '29463-7'][i % 3] };
    const id = await post('Observation', {
      status: 'final',
      code: { coding: [{ system: o.system, code: o.code }] },
      subject: { reference: `Patient/${patients[o.patient]}` },
    });
    observations.push({ id, ...o });
  }
});

afterAll(() => server.stop());

test('patient and code find exactly the observations that match both, for every token form and OR on either side', async () => {
  const [a, b] = patients;
  expect(await found(`patient=Patient/${a}&code=http://loinc.org|8867-4`)).toEqual(expected([0], (o) => o.system === 'http://loinc.org' && o.code === '8867-4'));
  expect(await found(`patient=${a}&code=8867-4`)).toEqual(expected([0], (o) => o.code === '8867-4'));
  expect(await found(`patient=${a}&code=|8302-2`)).toEqual(expected([0], (o) => o.system === undefined && o.code === '8302-2'));
  expect(await found(`patient=${b}&code=http://loinc.org|`)).toEqual(expected([1], (o) => o.system === 'http://loinc.org'));
  expect(await found(`patient=${a},${b}&code=8867-4,http://loinc.org|29463-7`)).toEqual(
    expected([0, 1], (o) => o.code === '8867-4' || (o.system === 'http://loinc.org' && o.code === '29463-7'))
  );
  expect(await found(`patient=${a}&code:not=8867-4`)).toEqual(expected([0], (o) => o.code !== '8867-4'));
  // Sorted (not narrowed: the pair is one more condition of the usual statement).
  expect(await found(`patient=${a},${b}&code=8867-4,http://loinc.org|29463-7&_sort=-_lastUpdated`)).toEqual(
    expected([0, 1], (o) => o.code === '8867-4' || (o.system === 'http://loinc.org' && o.code === '29463-7'))
  );
  expect(await found(`patient=${b}&code=http://loinc.org|&_sort=_id`)).toEqual(expected([1], (o) => o.system === 'http://loinc.org'));
  expect(await found(`patient=${a}&code=8867-4&code=http://loinc.org|8867-4`)).toEqual(
    expected([0], (o) => o.system === 'http://loinc.org' && o.code === '8867-4')
  );
});

test('the compartment (subject or performer) and subject= with a code find the same as patient= with it, plus what the patient performed', async () => {
  const [a, b] = patients;
  const performed = await post('Observation', {
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
    subject: { reference: `Patient/${b}` },
    performer: [{ reference: `Patient/${a}` }],
  });
  try {
    const bySubject = expected([0], (o) => o.system === 'http://loinc.org' && o.code === '8867-4');
    expect(await found(`subject=Patient/${a}&code=http://loinc.org|8867-4`)).toEqual(bySubject);
    const compartment = await fhirRequest('GET', `${server.base}/Patient/${a}/Observation?code=http://loinc.org|8867-4&_count=100`);
    expect(compartment.status).toBe(200);
    const ids = ((compartment.body as Bundle).entry ?? []).map((e) => e.resource?.id as string).sort();
    expect(ids).toEqual([...bySubject, performed].sort());
  } finally {
    expect((await fhirRequest('DELETE', `${server.base}/Observation/${performed}`)).status).toBeLessThan(300);
  }
});

test('an update that changes the code or the patient, and a delete, move the observation out of the old pair at once', async () => {
  const [a, b] = patients;
  const target = observations.find((o) => o.patient === 0 && o.code === '8867-4' && o.system) as (typeof observations)[number];
  const query = `patient=${a}&code=http://loinc.org|8867-4`;
  expect(await found(query)).toContain(target.id);
  const moved: Observation = { resourceType: 'Observation', id: target.id, status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] }, subject: { reference: `Patient/${b}` } };
  expect((await fhirRequest('PUT', `${server.base}/Observation/${target.id}`, { body: moved })).status).toBe(200);
  expect(await found(query)).not.toContain(target.id);
  expect(await found(`patient=${b}&code=http://loinc.org|8867-4`)).toContain(target.id);
  expect((await fhirRequest('DELETE', `${server.base}/Observation/${target.id}`)).status).toBeLessThan(300);
  expect(await found(`patient=${b}&code=http://loinc.org|8867-4`)).not.toContain(target.id);
  observations.splice(observations.indexOf(target), 1);
});

test('rows written before the pair column existed get it filled, with the values a write would give, when the schema is brought up to date', async () => {
  const knex = createKnex(server.databaseUrl, 1);
  try {
    await knex.raw('ALTER TABLE "Observation" DROP COLUMN __pair_patient_code');
    await syncIndexColumns(knex);
    const rows: { content: Observation; pair: string[] | null }[] = (
      await knex.raw('SELECT content, __pair_patient_code AS pair FROM "Observation" WHERE NOT deleted')
    ).rows;
    expect(rows.length).toBe(observations.length);
    for (const row of rows) {
      expect(row.pair).not.toBeNull();
      expect([...(row.pair ?? [])].sort()).toEqual([...(extractIndexValues(row.content).__pair_patient_code as string[])].sort());
    }
    const index = await knex.raw(`SELECT 1 FROM pg_indexes WHERE tablename = 'Observation' AND indexdef LIKE '%__pair_patient_code%'`);
    expect(index.rows.length).toBe(1);
  } finally {
    await knex.destroy();
  }
  expect(await found(`patient=${patients[1]}&code=29463-7`)).toEqual(expected([1], (o) => o.code === '29463-7'));
});
