import type { Resource } from '@medplum/fhirtypes';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { foldText, officialValues } from './independent-evaluation';
import { oracleQuantity } from './numeric-oracle';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';
import { searchIds, type SearchTestDatabase, storeSearchFixture } from './search-test-database';

/**
 * `_sort` on several keys (R4 search.html#sort) over string, date, number, quantity,
 * token, reference and uri parameters, ascending and descending. The test's own reading of each key: a resource
 * with several values sorts by its smallest ascending and its largest descending (a date
 * by its range's start ascending, its end descending), resources without a value come
 * last either way, and later keys break ties of earlier ones.
 */
const TYPES = ['Patient', 'Practitioner', 'Observation', 'Encounter', 'Condition', 'RiskAssessment', 'Immunization', 'ValueSet', 'CodeSystem'];

/** Kinds whose keys are texts ranked in the database's collation. */
const TEXT_KINDS: ReadonlySet<string> = new Set(['string', 'token', 'reference', 'uri']);
const options = { strict: true, defaultCount: 20, maxCount: 100000 };

type Key = number | string | undefined;

/** [start, end) of a FHIR date, dateTime or instant, in ms; written here, not shared with the engine. */
function dateRange(text: string): [number, number] | undefined {
  const m = /^(\d{4})(-\d{2})?(-\d{2})?(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$/.exec(text);
  if (!m) return undefined;
  const [, , month, day, time, , fraction, zone] = m;
  const iso = !month ? `${text}-01-01T00:00:00Z` : !day ? `${text}-01T00:00:00Z` : !time ? `${text}T00:00:00Z` : zone ? text : `${text}Z`;
  const start = Date.parse(iso);
  const d = new Date(start);
  if (!month) d.setUTCFullYear(d.getUTCFullYear() + 1);
  else if (!day) d.setUTCMonth(d.getUTCMonth() + 1);
  else if (!time) d.setUTCDate(d.getUTCDate() + 1);
  else if (!m[5]) d.setUTCMinutes(d.getUTCMinutes() + 1);
  else if (!fraction) d.setUTCSeconds(d.getUTCSeconds() + 1);
  else d.setUTCMilliseconds(d.getUTCMilliseconds() + 1);
  return [start, d.getTime()];
}

/** The points a value spans, per parameter type (the sort reads their extremes). */
function points(kind: string, v: unknown): (number | string)[] {
  const o = v as Record<string, any>;
  switch (kind) {
    case 'string': {
      if (typeof v === 'string') return v.trim() ? [foldText(v)] : [];
      const parts = ['family', 'given', 'prefix', 'suffix', 'text', 'line', 'city', 'district', 'state', 'postalCode', 'country'].flatMap((k) => [o[k]].flat());
      return parts.filter((p): p is string => typeof p === 'string' && p.trim() !== '').map(foldText);
    }
    case 'date': {
      if (typeof v === 'string') return dateRange(v) ?? [];
      const period = o.start || o.end ? o : o.repeat?.boundsPeriod;
      const events: string[] = o.event ?? [];
      const out = events.flatMap((e) => dateRange(e) ?? []);
      if (period?.start) out.push((dateRange(period.start) as [number, number])[0]);
      if (period?.end) out.push((dateRange(period.end) as [number, number])[1]);
      if (period && (period.start || period.end) && !period.end) out.push(Infinity);
      return out;
    }
    case 'number':
      return typeof v === 'number' ? [v] : [];
    // Tokens sort by code (Coding.code, each coding of a CodeableConcept, Identifier and
    // ContactPoint value, code and boolean values), whatever the system.
    case 'token': {
      const codes: unknown[] =
        typeof v === 'string' || typeof v === 'boolean' ? [String(v)] : o.coding ? o.coding.map((c: { code?: string }) => c.code) : [o.code ?? o.value];
      return codes.filter((c): c is string => typeof c === 'string' && c !== '' && !c.includes('|'));
    }
    // References by the reference as stored: without `_history/n`; contained ones are not stored.
    case 'reference': {
      const ref = typeof v === 'string' ? v : o.reference;
      return typeof ref === 'string' && ref !== '' && !ref.startsWith('#') ? [ref.replace(/\/_history\/[^/]+$/, '')] : [];
    }
    case 'uri':
      return typeof v === 'string' && v !== '' ? [v] : [];
    case 'quantity': {
      const q = typeof v === 'object' && v !== null ? oracleQuantity(o) : undefined;
      return q ? [q.lo, q.hi].filter(Number.isFinite) : [];
    }
    default:
      throw new Error(kind);
  }
}

interface SortCase {
  type: string;
  sort: string;
  /** Parameter type of each key, in order. */
  kinds: string[];
}

const CASES: SortCase[] = [
  { type: 'Patient', sort: 'family,-birthdate', kinds: ['string', 'date'] },
  { type: 'Patient', sort: '-birthdate,given', kinds: ['date', 'string'] },
  { type: 'Patient', sort: '-address-city,-family', kinds: ['string', 'string'] },
  { type: 'Practitioner', sort: 'name', kinds: ['string'] },
  { type: 'Observation', sort: '-value-quantity,date', kinds: ['quantity', 'date'] },
  { type: 'Observation', sort: 'date,-value-quantity', kinds: ['date', 'quantity'] },
  { type: 'Encounter', sort: 'length,-date', kinds: ['quantity', 'date'] },
  { type: 'Condition', sort: '-onset-date,recorded-date', kinds: ['date', 'date'] },
  { type: 'RiskAssessment', sort: '-probability,date', kinds: ['number', 'date'] },
  { type: 'Immunization', sort: '-date,_id', kinds: ['date', 'id'] },
  { type: 'Observation', sort: 'code,-date', kinds: ['token', 'date'] },
  { type: 'Patient', sort: '-gender,family', kinds: ['token', 'string'] },
  { type: 'Encounter', sort: 'subject,-date', kinds: ['reference', 'date'] },
  { type: 'Observation', sort: '-subject,code', kinds: ['reference', 'token'] },
  { type: 'ValueSet', sort: 'url', kinds: ['uri'] },
  { type: 'CodeSystem', sort: '-url', kinds: ['uri'] },
];

/** A resource's values of one parameter; a conformance resource's `url` also stands for `url|version`. */
function keyPoints(r: Resource, code: string, kind: string): (number | string)[] {
  const ps = officialValues(r, code).flatMap((v) => points(kind, v));
  const version = (r as { version?: unknown }).version;
  if (kind === 'uri' && code === 'url' && typeof version === 'string') ps.push(...ps.map((p) => `${p}|${version}`));
  return ps;
}

describe('_sort on several keys of each sortable parameter type', () => {
  let db: SearchTestDatabase;
  let live: Resource[];
  let rank: Map<string, number>;

  beforeAll(async () => {
    const resources = uniqueById([...loadHl7Examples(TYPES), ...loadSynthea(TYPES, 2)]);
    ({ db, live } = await storeSearchFixture(TYPES, resources, (_, i) => i % 12 === 7));
    // Text keys compare in the database's collation: PostgreSQL ranks the test's own folded strings.
    const texts = new Set<string>(live.map((r) => r.id as string));
    for (const c of CASES) {
      for (const [i, code] of c.sort.split(',').map((k) => k.replace(/^-/, '')).entries()) {
        if (!TEXT_KINDS.has(c.kinds[i])) continue;
        for (const r of live.filter((x) => x.resourceType === c.type)) for (const p of keyPoints(r, code, c.kinds[i])) texts.add(p as string);
      }
    }
    const ordered: { t: string }[] = (await db.knex.raw('SELECT DISTINCT t FROM unnest(?::text[]) t ORDER BY t', [[...texts]])).rows;
    rank = new Map(ordered.map((row, i) => [row.t, i]));
  });

  afterAll(async () => {
    await db?.drop();
  });

  /** One resource's key for one sort rule: its smallest point ascending, its largest descending. */
  function key(r: Resource, code: string, kind: string, descending: boolean): Key {
    if (kind === 'id') return rank.get(r.id as string);
    const ps = keyPoints(r, code, kind);
    if (ps.length === 0) return undefined;
    const ns = ps.map((p) => (typeof p === 'string' ? (rank.get(p) as number) : p));
    return descending ? Math.max(...ns) : Math.min(...ns);
  }

  /** ≤ 0 when a may come before b under the rules (missing last in both directions). */
  function compare(a: Key[], b: Key[], descending: boolean[]): number {
    for (let i = 0; i < a.length; i++) {
      if (a[i] === b[i]) continue;
      if (a[i] === undefined) return 1;
      if (b[i] === undefined) return -1;
      const d = (a[i] as number) < (b[i] as number) ? -1 : 1;
      return descending[i] ? -d : d;
    }
    return 0;
  }

  test.each(CASES)('$type?_sort=$sort orders every live resource by its keys, missing values last', async ({ type, sort, kinds }) => {
    const rules = sort.split(',').map((k) => ({ code: k.replace(/^-/, ''), descending: k.startsWith('-') }));
    const ofType = live.filter((r) => r.resourceType === type);
    const keys = new Map(ofType.map((r) => [r.id as string, rules.map((rule, i) => key(r, rule.code, kinds[i], rule.descending))]));
    const ids = await searchIds(db.knex, parseSearchRequest(type, { _sort: sort }, options));
    expect(ids.slice().sort()).toEqual([...keys.keys()].sort());
    const outOfOrder: unknown[] = [];
    for (let i = 1; i < ids.length; i++) {
      const [a, b] = [keys.get(ids[i - 1]) as Key[], keys.get(ids[i]) as Key[]];
      if (compare(a, b, rules.map((r) => r.descending)) > 0) outOfOrder.push({ before: ids[i - 1], a, after: ids[i], b });
    }
    expect(outOfOrder.slice(0, 3)).toEqual([]);
    // The order means something only if the first key takes several values.
    expect(new Set([...keys.values()].map((k) => k[0])).size).toBeGreaterThan(2);
  });

  test('a parameter that cannot be sorted on (composite) is a warning, or a 400 when strict', () => {
    const lenient = parseSearchRequest('Observation', { _sort: 'code-value-quantity,-_lastUpdated' }, { ...options, strict: false });
    expect(lenient.sort).toEqual([{ code: '_lastUpdated', descending: true }]);
    expect(lenient.warnings.map((w) => w.diagnostics).join()).toContain('code-value-quantity');
    expect(() => parseSearchRequest('Observation', { _sort: 'code-value-quantity' }, options)).toThrow(expect.objectContaining({ status: 400 }));
  });
});
