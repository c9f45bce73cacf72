import type { Resource } from '@medplum/fhirtypes';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { loadHl7Examples, loadSynthea } from './search-fixtures';
import { createResourceTable, createSearchTestDatabase, insertResources, markDeleted, searchIds, type SearchTestDatabase } from './search-test-database';

const options = { strict: true, defaultCount: 20, maxCount: 1000 };
const BASE = Date.parse('2019-12-31T20:00:00Z');
const STEP = (7 * 60 + 13) * 60_000 + 17_250; // 7h13m17.25s: rows cross minutes, days, months and a year boundary

/** The search range of a date value, computed here from its precision (independently of the engine). */
function searchRange(text: string): [number, number] {
  const start = Date.parse(text.length === 4 ? `${text}-01-01T00:00:00Z` : text.length === 7 ? `${text}-01T00:00:00Z` : text.length === 10 ? `${text}T00:00:00Z` : text);
  const next = new Date(start);
  if (text.length === 4) next.setUTCFullYear(next.getUTCFullYear() + 1);
  else if (text.length === 7) next.setUTCMonth(next.getUTCMonth() + 1);
  else if (text.length === 10) next.setUTCDate(next.getUTCDate() + 1);
  else if (/T\d\d:\d\dZ$/.test(text)) next.setUTCMinutes(next.getUTCMinutes() + 1);
  else if (/:\d\d\.\d{3}Z$/.test(text)) next.setUTCMilliseconds(next.getUTCMilliseconds() + 1);
  else next.setUTCSeconds(next.getUTCSeconds() + 1);
  return [start, next.getTime()];
}

/** R4 prefix semantics for a point in time v against the search range [S, E). */
const PREFIX: Record<string, (v: number, s: number, e: number) => boolean> = {
  eq: (v, s, e) => v >= s && v < e,
  ne: (v, s, e) => v < s || v >= e,
  gt: (v, _s, e) => v >= e,
  lt: (v, s) => v < s,
  ge: (v, s) => v >= s,
  le: (v, _s, e) => v < e,
  sa: (v, _s, e) => v >= e,
  eb: (v, s) => v < s,
};

describe('_lastUpdated, _id and _sort', () => {
  let db: SearchTestDatabase;
  let live: { id: string; at: number }[];

  beforeAll(async () => {
    db = await createSearchTestDatabase();
    await createResourceTable(db.knex, 'Patient');
    const patients: Resource[] = [...loadHl7Examples(['Patient']), ...loadSynthea(['Patient'], 40)];
    const at = (i: number): number => BASE + Math.floor(i / 2) * STEP; // pairs share a timestamp: ties need the id
    await insertResources(db.knex, patients, (_r, i) => new Date(at(i)));
    const deleted = patients.filter((_, i) => i % 9 === 4);
    for (const r of deleted) await markDeleted(db.knex, r);
    live = patients.map((r, i) => ({ id: r.id as string, at: at(i) })).filter((p) => !deleted.some((d) => d.id === p.id));
  });

  afterAll(async () => {
    await db?.drop();
  });

  const sample = (i: number): string => new Date(BASE + i * STEP).toISOString();
  const values = ['2020', '2020-01', '2019-12', '2020-01-02', sample(5).slice(0, 16) + 'Z', sample(7).slice(0, 19) + 'Z', sample(9)];

  test.each(Object.keys(PREFIX))('_lastUpdated=%s… matches the R4 range semantics at every precision', async (prefix) => {
    for (const value of values) {
      const [s, e] = searchRange(value);
      const expected = live.filter((p) => PREFIX[prefix](p.at, s, e)).map((p) => p.id).sort();
      const actual = await searchIds(db.knex, parseSearchRequest('Patient', { _lastUpdated: `${prefix}${value}` }, options));
      expect({ value, ids: actual.sort() }).toEqual({ value, ids: expected });
    }
  });

  test('ap matches at least what eq matches and at most the range widened by 10% of its distance from now', async () => {
    const [s, e] = searchRange('2020-01-02');
    const slack = (Date.now() - s) * 0.11;
    const actual = await searchIds(db.knex, parseSearchRequest('Patient', { _lastUpdated: 'ap2020-01-02' }, options));
    const eq = live.filter((p) => p.at >= s && p.at < e).map((p) => p.id);
    const wide = live.filter((p) => p.at >= s - slack && p.at < e + slack).map((p) => p.id);
    expect(actual).toEqual(expect.arrayContaining(eq));
    expect(wide).toEqual(expect.arrayContaining(actual));
    expect(actual.length).toBeGreaterThan(eq.length);
  });

  test('a range is ANDed by repeating the parameter and ORed with commas', async () => {
    const both = { _lastUpdated: ['ge2020-01-02', 'lt2020-01-04'] };
    const expected = live.filter((p) => p.at >= Date.parse('2020-01-02') && p.at < Date.parse('2020-01-04')).map((p) => p.id);
    expect((await searchIds(db.knex, parseSearchRequest('Patient', both, options))).sort()).toEqual(expected.sort());
    const either = { _lastUpdated: 'lt2020-01-01,ge2020-01-05' };
    const expectedEither = live.filter((p) => p.at < Date.parse('2020-01-01') || p.at >= Date.parse('2020-01-05')).map((p) => p.id);
    expect((await searchIds(db.knex, parseSearchRequest('Patient', either, options))).sort()).toEqual(expectedEither.sort());
  });

  test('_id matches exactly the listed live ids, and :not the others', async () => {
    const ids = [live[0].id, live[3].id, 'no-such-id'];
    expect((await searchIds(db.knex, parseSearchRequest('Patient', { _id: ids.join(',') }, options))).sort()).toEqual([live[0].id, live[3].id].sort());
    const others = await searchIds(db.knex, parseSearchRequest('Patient', { '_id:not': ids.join(',') }, options));
    expect(others.sort()).toEqual(live.map((p) => p.id).filter((id) => !ids.includes(id)).sort());
  });

  test('results are ordered by id by default (server ids grow with time), and _sort orders them by _lastUpdated either way', async () => {
    // Ids compare in the database's collation for text (storage may choose C); ask it for their order.
    const ordered: { id: string }[] = (
      await db.knex.raw('SELECT unnest(?::text[]) AS id ORDER BY 1', [live.map((p) => p.id)])
    ).rows;
    const rank = new Map(ordered.map((r, i) => [r.id, i]));
    const byId = (a: { id: string }, b: { id: string }): number => (rank.get(a.id) ?? 0) - (rank.get(b.id) ?? 0);
    const byTime = [...live].sort((a, b) => a.at - b.at || byId(a, b));
    expect(await searchIds(db.knex, parseSearchRequest('Patient', {}, options))).toEqual([...live].sort(byId).map((p) => p.id));
    expect(await searchIds(db.knex, parseSearchRequest('Patient', { _sort: '_lastUpdated' }, options))).toEqual(byTime.map((p) => p.id));
    const desc = [...live].sort((a, b) => b.at - a.at || byId(a, b));
    expect(await searchIds(db.knex, parseSearchRequest('Patient', { _sort: '-_lastUpdated' }, options))).toEqual(desc.map((p) => p.id));
    const byIdDesc = [...live].sort(byId).reverse().map((p) => p.id);
    expect(await searchIds(db.knex, parseSearchRequest('Patient', { _sort: '-_id' }, options))).toEqual(byIdDesc);
  });
});
