import type { Bundle, Encounter } from '@medplum/fhirtypes';
import { createKnex } from '../../server/storage/database';
import { genericPlans } from '../../server/storage/generic-plans';
import { fhirRequest, searchAllPages } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * Statements whose shape fixes their plan run on a pool of their own whose connections
 * always use the generic plan (storage/generic-plans.ts): the narrowed patient searches,
 * reads by ids, and a few patients' rows in another order (`Encounter?patient=X&_sort=-date`),
 * which storage reads through the patient index alone and sorts.
 */

const DAY = 86_400_000;

describe('the generic-plan pool', () => {
  const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

  test('runs its statements with generic plans while the pool keeps PostgreSQL’s own choice, and closes with it', async () => {
    const knex = createKnex(url, 4);
    const generic = genericPlans(knex);
    expect(generic).not.toBe(knex);
    expect((await generic.raw('SHOW plan_cache_mode')).rows[0].plan_cache_mode).toBe('force_generic_plan');
    expect((await knex.raw('SHOW plan_cache_mode')).rows[0].plan_cache_mode).toBe('auto');
    await knex.destroy();
    await expect(generic.raw('SELECT 1')).rejects.toThrow();
  });

  test('a transaction keeps its own connection (its snapshot), so it is its own generic-plan pool', async () => {
    const knex = createKnex(url, 2);
    try {
      await knex.transaction(async (trx) => {
        expect(genericPlans(trx)).toBe(trx);
      });
    } finally {
      await knex.destroy();
    }
  });
});

describe('a few patients’ rows in another order than id', () => {
  let server: TestServer;
  const patients: string[] = [];
  /** Per patient, its Encounters with the range their period spans. */
  const encounters = new Map<string, { id: string; lo: number; hi: number; status: string }[]>();

  async function post(body: Record<string, unknown>): Promise<string> {
    const res = await fhirRequest('POST', `${server.base}/${body.resourceType}`, { body });
    expect(res.status).toBe(201);
    return res.body.id as string;
  }

  beforeAll(async () => {
    server = await startTestServer();
    for (const family of ['SortA', 'SortB', 'SortC']) patients.push(await post({ resourceType: 'Patient', name: [{ family }] }));
    // Distinct starts and ends, not in creation order: the order can only come from the dates.
    for (let i = 0; i < 36; i++) {
      const patient = patients[i % 3];
      const start = Date.UTC(2015, 0, 1) + ((i * 7919) % 997) * DAY;
      const end = start + (1 + ((i * 31) % 11)) * DAY + (i % 5) * 997 * DAY;
      const status = i % 4 === 0 ? 'planned' : 'finished';
      const day = (t: number): string => new Date(t).toISOString().slice(0, 10);
      const id = await post({
        resourceType: 'Encounter',
        status,
        class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
        subject: { reference: `Patient/${patient}` },
        period: { start: day(start), end: day(end) },
      });
      const list = encounters.get(patient) ?? [];
      // A day's range: from its first to its last millisecond.
      list.push({ id, lo: Date.parse(day(start)), hi: Date.parse(day(end)) + DAY - 1, status });
      encounters.set(patient, list);
    }
  });

  afterAll(() => server.stop());

  const ids = (resources: Encounter[]): string[] => resources.map((r) => r.id as string);
  const byHiDescending = (list: { id: string; hi: number }[]): string[] => [...list].sort((a, b) => b.hi - a.hi).map((e) => e.id);
  const byLoAscending = (list: { id: string; lo: number }[]): string[] => [...list].sort((a, b) => a.lo - b.lo).map((e) => e.id);

  test('_sort=-date pages through one patient’s Encounters by end, latest first, each once', async () => {
    const [a] = patients;
    const found = await searchAllPages<Encounter>(`${server.base}/Encounter?patient=${a}&_sort=-date&_count=5`);
    expect(ids(found)).toEqual(byHiDescending(encounters.get(a) ?? []));
  });

  test('_sort=date, other filters, several patients and the compartment give the same order as the dates', async () => {
    const [a, b, c] = patients;
    expect(ids(await searchAllPages<Encounter>(`${server.base}/Encounter?patient=${b}&_sort=date&_count=4`))).toEqual(byLoAscending(encounters.get(b) ?? []));
    expect(ids(await searchAllPages<Encounter>(`${server.base}/Encounter?patient=${c}&status=finished&_sort=-date&_count=3`))).toEqual(
      byHiDescending((encounters.get(c) ?? []).filter((e) => e.status === 'finished'))
    );
    expect(ids(await searchAllPages<Encounter>(`${server.base}/Encounter?patient=${a},${c}&_sort=-date&_count=7`))).toEqual(
      byHiDescending([...(encounters.get(a) ?? []), ...(encounters.get(c) ?? [])])
    );
    expect(ids(await searchAllPages<Encounter>(`${server.base}/Patient/${b}/Encounter?_sort=-date&_count=6`))).toEqual(byHiDescending(encounters.get(b) ?? []));
  });

  test('walking back from the last page gives the pages in reverse', async () => {
    const [a] = patients;
    const pages: string[][] = [];
    let last: Bundle | undefined;
    for (let next: string | undefined = `${server.base}/Encounter?patient=${a}&_sort=-date&_count=5`; next; ) {
      const res = await fhirRequest('GET', next);
      last = res.body as Bundle;
      pages.push((last.entry ?? []).map((e) => e.resource?.id as string));
      next = last.link?.find((l) => l.relation === 'next')?.url;
    }
    const back: string[][] = [pages[pages.length - 1]];
    for (let previous = last?.link?.find((l) => l.relation === 'previous')?.url; previous; ) {
      const res = await fhirRequest('GET', previous);
      const bundle = res.body as Bundle;
      back.unshift((bundle.entry ?? []).map((e) => e.resource?.id as string));
      previous = bundle.link?.find((l) => l.relation === 'previous')?.url;
    }
    expect(back).toEqual(pages);
  });
});
