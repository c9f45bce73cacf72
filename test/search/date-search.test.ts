import type { Resource } from '@medplum/fhirtypes';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { indexedParams } from '../../server/search/supported-parameters';
import { officialValues } from './independent-evaluation';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';
import { createResourceTable, createSearchTestDatabase, insertResources, markDeleted, searchIds, type SearchTestDatabase } from './search-test-database';

const TYPES = ['Patient', 'Observation', 'Encounter', 'Condition', 'Immunization', 'Procedure', 'MedicationRequest', 'AllergyIntolerance', 'CarePlan'];
const options = { strict: true, defaultCount: 20, maxCount: 1000 };

/** [start, end) of a FHIR date/dateTime/instant, from its precision; written here, not shared with the engine. */
function range(text: string): [number, number] | undefined {
  const m = /^(\d{4})(-\d{2})?(-\d{2})?(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$/.exec(text);
  if (!m) return undefined;
  const [, , month, day, time, seconds, fraction, zone] = m;
  const iso = !month ? `${text}-01-01T00:00:00Z` : !day ? `${text}-01T00:00:00Z` : !time ? `${text}T00:00:00Z` : zone ? text : `${text}Z`;
  const start = Date.parse(iso.replace(/T(\d{2}:\d{2})(Z|[+-])/, 'T$1:00$2'));
  const d = new Date(start);
  if (!month) d.setUTCFullYear(d.getUTCFullYear() + 1);
  else if (!day) d.setUTCMonth(d.getUTCMonth() + 1);
  else if (!time) d.setUTCDate(d.getUTCDate() + 1);
  else if (!seconds) d.setUTCMinutes(d.getUTCMinutes() + 1);
  else if (!fraction) d.setUTCSeconds(d.getUTCSeconds() + 1);
  else d.setUTCMilliseconds(d.getUTCMilliseconds() + Math.max(1, 10 ** (4 - fraction.length)));
  return [start, d.getTime()];
}

/** The closed range [lo, hi] a parameter's values span (R4: a Period is its start..end, a Timing its events and bounds). */
function envelope(values: unknown[]): [number, number] | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  const add = (r: [number, number] | undefined): void => {
    if (r) [lo, hi] = [Math.min(lo, r[0]), Math.max(hi, r[1] - 1)];
  };
  const period = (p: { start?: string; end?: string } | undefined): void => {
    if (!p || (!p.start && !p.end)) return;
    const s = p.start ? range(p.start) : undefined;
    const e = p.end ? range(p.end) : undefined;
    if (s || e) add([s ? s[0] : -Infinity, e ? e[1] : Infinity]);
  };
  for (const v of values) {
    if (typeof v === 'string') add(range(v));
    else if (v && typeof v === 'object') {
      const o = v as { start?: string; end?: string; event?: string[]; repeat?: { boundsPeriod?: { start?: string; end?: string } } };
      if ('event' in o || 'repeat' in o) {
        o.event?.forEach((e) => add(range(e)));
        period(o.repeat?.boundsPeriod);
      } else period(o);
    }
  }
  return lo <= hi ? [lo, hi] : undefined;
}

/** R4 prefixes for a target [lo, hi] and a search range [S, E). */
const PREFIX: Record<string, (lo: number, hi: number, s: number, e: number) => boolean> = {
  eq: (lo, hi, s, e) => lo >= s && hi < e,
  ne: (lo, hi, s, e) => !(lo >= s && hi < e),
  gt: (_lo, hi, _s, e) => hi >= e,
  lt: (lo, _hi, s) => lo < s,
  ge: (lo, hi, s, e) => hi >= e || (lo >= s && hi < e),
  le: (lo, hi, s, e) => lo < s || (lo >= s && hi < e),
  sa: (lo, _hi, _s, e) => lo >= e,
  eb: (_lo, hi, s) => hi < s,
  // R4's recommendation, which this server follows: widen the search range by 10% of its
  // distance from now (Date truncates to whole milliseconds, as the server's bounds do).
  ap: (lo, hi, s, e) => {
    const slack = Math.abs(Date.now() - (s + e) / 2) * 0.1;
    return lo < new Date(e + slack).getTime() && hi >= new Date(s - slack).getTime();
  },
};

describe('date search over HL7 examples and Synthea', () => {
  let db: SearchTestDatabase;
  let resources: Resource[];
  let deleted: Set<Resource>;

  beforeAll(async () => {
    db = await createSearchTestDatabase();
    for (const type of TYPES) await createResourceTable(db.knex, type);
    resources = uniqueById([...loadHl7Examples(TYPES), ...loadSynthea(TYPES, 2)]);
    await insertResources(db.knex, resources);
    deleted = new Set(resources.filter((_, i) => i % 11 === 5));
    for (const r of deleted) await markDeleted(db.knex, r);
  });

  afterAll(async () => {
    await db?.drop();
  });

  test.each(TYPES)('every date parameter of %s matches each prefix at year, month, day and second precision', async (type) => {
    const live = resources.filter((r) => r.resourceType === type && !deleted.has(r));
    const dateCodes = [...indexedParams(type).values()].filter((p) => p.def.type === 'date').map((p) => p.def.code);
    expect(dateCodes.length).toBeGreaterThan(0);
    let selective = 0;
    for (const code of dateCodes) {
      const spans = new Map(live.map((r) => [r.id as string, envelope(officialValues(r, code))]));
      const withValues = [...spans.values()].filter((s): s is [number, number] => s !== undefined && Number.isFinite(s[0]));
      for (const missing of [true, false]) {
        const actual = await searchIds(db.knex, parseSearchRequest(type, { [`${code}:missing`]: String(missing) }, options));
        expect({ code, missing, ids: actual.sort() }).toEqual({
          code,
          missing,
          ids: [...spans].filter(([, s]) => (s === undefined) === missing).map(([id]) => id).sort(),
        });
      }
      if (withValues.length === 0) continue;
      const pick = new Date(withValues[Math.floor(withValues.length / 2)][0]).toISOString();
      const searchValues = [pick.slice(0, 4), pick.slice(0, 7), pick.slice(0, 10), `${pick.slice(0, 19)}Z`, `${pick.slice(0, 16)}+05:30`];
      for (const value of searchValues) {
        const [s, e] = range(value) as [number, number];
        for (const prefix of Object.keys(PREFIX)) {
          const actual = await searchIds(db.knex, parseSearchRequest(type, { [code]: `${prefix}${value}` }, options));
          const expected = [...spans].filter(([, sp]) => sp && PREFIX[prefix](sp[0], sp[1], s, e)).map(([id]) => id);
          expect({ query: `${type}?${code}=${prefix}${value}`, ids: actual.sort() }).toEqual({
            query: `${type}?${code}=${prefix}${value}`,
            ids: expected.sort(),
          });
          if (expected.length > 0 && expected.length < live.length) selective++;
        }
      }
    }
    expect(selective).toBeGreaterThan(0);
  });

  test('_sort on a date orders by start ascending, or by end descending, with missing values last', async () => {
    const live = resources.filter((r) => r.resourceType === 'Observation' && !deleted.has(r));
    const spans = new Map(live.map((r) => [r.id as string, envelope(officialValues(r, 'date'))]));
    const asc = await searchIds(db.knex, parseSearchRequest('Observation', { _sort: 'date' }, options));
    expect(asc.sort()).toEqual([...spans.keys()].sort());
    const ascOrdered = await searchIds(db.knex, parseSearchRequest('Observation', { _sort: 'date' }, options));
    const los = ascOrdered.map((id) => spans.get(id)?.[0] ?? Infinity);
    expect(los).toEqual([...los].sort((a, b) => a - b));
    const desc = await searchIds(db.knex, parseSearchRequest('Observation', { _sort: '-date,_id' }, options));
    const his = desc.map((id) => spans.get(id)?.[1] ?? -Infinity);
    expect(his).toEqual([...his].sort((a, b) => b - a));
  });

  test('a Period without an end is still going on: it is after any date after its start', async () => {
    const open: Resource = { resourceType: 'Encounter', id: 'open-period', status: 'in-progress', class: { code: 'IMP' }, period: { start: '2021-06-01' } };
    await insertResources(db.knex, [open]);
    const find = async (value: string): Promise<string[]> => searchIds(db.knex, parseSearchRequest('Encounter', { date: value }, options));
    expect(await find('gt2090-01-01')).toContain('open-period');
    expect(await find('sa2021-05')).toContain('open-period');
    expect(await find('eq2021-06')).not.toContain('open-period');
    expect(await find('eb2021-06-02')).not.toContain('open-period');
    expect(await find('lt2021-06-01')).not.toContain('open-period');
  });

  test('a malformed date or a modifier dates do not have is a 400', () => {
    expect(() => parseSearchRequest('Observation', { date: 'ge2020-02-30' }, options)).toThrow(/Invalid date/);
    expect(() => parseSearchRequest('Observation', { date: 'xy2020' }, { ...options, strict: false })).toThrow(/prefix/);
    expect(() => parseSearchRequest('Observation', { 'date:exact': '2020' }, { ...options, strict: false })).toThrow(/Modifier/);
  });
});
