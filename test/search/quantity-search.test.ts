import type { Resource } from '@medplum/fhirtypes';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { indexedParams } from '../../server/search/supported-parameters';
import { officialValues } from './independent-evaluation';
import { oracleQuantity, PREFIXES, quantityMatches, sampleNumbers, type OracleQuantity } from './numeric-oracle';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';
import { searchIds, type SearchTestDatabase, storeSearchFixture } from './search-test-database';

const TYPES = ['Observation', 'Condition', 'ChargeItem', 'Invoice', 'Encounter', 'Substance', 'PlanDefinition'];
const options = { strict: true, defaultCount: 20, maxCount: 1000 };

/** An onset between 20 and 30 years of age. */
const ONSET_RANGE: Resource = {
  resourceType: 'Condition',
  id: 'onset-range',
  subject: { reference: 'Patient/x' },
  onsetRange: { low: { value: 20, system: 'http://unitsofmeasure.org', code: 'a', unit: 'years' }, high: { value: 30, system: 'http://unitsofmeasure.org', code: 'a' } },
};

/** Two quantities in one resource: 5 mg and 120 mm[Hg]. */
const TWO_COMPONENTS: Resource = {
  resourceType: 'Observation',
  id: 'two-components',
  status: 'final',
  code: { text: 'x' },
  component: [
    { code: { text: 'a' }, valueQuantity: { value: 5, unit: 'milligram', system: 'http://unitsofmeasure.org', code: 'mg' } },
    { code: { text: 'b' }, valueQuantity: { value: 120, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } },
  ],
};

describe('quantity search', () => {
  let db: SearchTestDatabase;
  let live: Resource[];

  beforeAll(async () => {
    const resources = uniqueById([...loadHl7Examples(TYPES), ...loadSynthea(['Observation', 'Condition', 'Encounter'], 2), TWO_COMPONENTS, ONSET_RANGE]);
    ({ db, live } = await storeSearchFixture(TYPES, resources, (r, i) => i % 13 === 4 && r !== TWO_COMPONENTS && r !== ONSET_RANGE));
  });

  afterAll(async () => {
    await db?.drop();
  });

  const find = (type: string, query: Record<string, string | string[]>): Promise<string[]> =>
    searchIds(db.knex, parseSearchRequest(type, query, options)).then((ids) => ids.sort());

  test.each(TYPES)('every quantity parameter of %s matches each prefix with and without units, and :missing', async (type) => {
    const params = [...indexedParams(type).values()].filter((p) => p.def.type === 'quantity').map((p) => p.def.code);
    expect(params.length).toBeGreaterThan(0);
    const ofType = live.filter((r) => r.resourceType === type);
    for (const code of params) {
      const values = new Map(
        ofType.map((r) => [r.id as string, officialValues(r, code).map((v) => oracleQuantity(v as Record<string, unknown>)).filter((q): q is OracleQuantity => q !== undefined)])
      );
      for (const missing of [true, false]) {
        expect({ code, missing, ids: await find(type, { [`${code}:missing`]: String(missing) }) }).toEqual({
          code,
          missing,
          ids: [...values].filter(([, v]) => (v.length === 0) === missing).map(([id]) => id).sort(),
        });
      }
      const all = [...values.values()].flat();
      for (const sample of sampleNumbers(all.flatMap((q) => [q.lo, q.hi]))) {
        const withUnit = all.find((q) => q.lo === sample || q.hi === sample) as OracleQuantity;
        const units = [''];
        if (withUnit.code) units.push(`||${withUnit.code}`, `|${withUnit.system ?? ''}|${withUnit.code}`, `|${withUnit.system ?? ''}|not-${withUnit.code}`);
        if (withUnit.unit) units.push(`||${withUnit.unit}`);
        for (const prefix of PREFIXES) {
          for (const unit of units) {
            const query = `${prefix}${sample}${unit}`;
            const expected = [...values].filter(([, qs]) => qs.some((q) => quantityMatches(q, query))).map(([id]) => id).sort();
            expect({ query: `${type}?${code}=${query}`, ids: await find(type, { [code]: query }) }).toEqual({ query: `${type}?${code}=${query}`, ids: expected });
          }
        }
      }
    }
  });

  test('the number and the unit must belong to the same quantity', async () => {
    expect(await find('Observation', { 'component-value-quantity': '5|http://unitsofmeasure.org|mg' })).toContain('two-components');
    expect(await find('Observation', { 'component-value-quantity': 'gt100||mm[Hg]' })).toContain('two-components');
    expect(await find('Observation', { 'component-value-quantity': '120||mg' })).not.toContain('two-components');
    expect(await find('Observation', { 'component-value-quantity': 'lt10|http://unitsofmeasure.org|mm[Hg]' })).not.toContain('two-components');
    expect(await find('Observation', { 'component-value-quantity': '5||milligram' })).toContain('two-components');
    // AND by repetition may be met by different quantities.
    expect(await find('Observation', { 'component-value-quantity': ['5||mg', '120||mm[Hg]'] })).toContain('two-components');
    expect(await find('Observation', { 'component-value-quantity': '7||mg,120||mm[Hg]' })).toContain('two-components');
  });

  test('money matches its currency as the code', async () => {
    const money = live.find((r) => r.resourceType === 'ChargeItem' && (r as any).priceOverride) as any;
    expect(money).toBeDefined();
    const { value, currency } = money.priceOverride;
    expect(await find('ChargeItem', { 'price-override': `${value}|urn:iso:std:iso:4217|${currency}` })).toContain(money.id);
    expect(await find('ChargeItem', { 'price-override': `${value}||${currency}` })).toContain(money.id);
    expect(await find('ChargeItem', { 'price-override': `${value}||XXX` })).not.toContain(money.id);
  });

  test('a Range is the span of its bounds: eq needs it inside the precision range, gt/lt/sa/eb/ap compare its ends', async () => {
    const hits = async (value: string): Promise<boolean> => (await find('Condition', { 'onset-age': value })).includes('onset-range');
    const expected: Record<string, boolean> = {
      eq25: false, ne25: true, gt25: true, lt25: true, ge30: true, gt30: false, le20: true, lt20: false,
      sa19: true, sa20: false, eb31: true, eb30: false, ap25: true, ap100: false, 'eq2e1': false, 'eq3e1': false,
      '25|http://unitsofmeasure.org|a': false, 'gt25|http://unitsofmeasure.org|a': true, 'gt25||years': true, 'gt25||mo': false,
    };
    for (const [value, hit] of Object.entries(expected)) expect({ value, hit: await hits(value) }).toEqual({ value, hit });
  });

  test('_sort orders by the smallest value ascending and the largest descending', async () => {
    const obs = live.filter((r) => r.resourceType === 'Observation');
    const values = new Map(obs.map((r) => [r.id as string, officialValues(r, 'value-quantity').map((v) => oracleQuantity(v as Record<string, unknown>)).filter((q): q is OracleQuantity => !!q)]));
    const low = (id: string): number => Math.min(...(values.get(id) ?? []).map((q) => (Number.isFinite(q.lo) ? q.lo : q.hi)), Infinity);
    const high = (id: string): number => Math.max(...(values.get(id) ?? []).map((q) => (Number.isFinite(q.hi) ? q.hi : q.lo)), -Infinity);
    const asc = (await searchIds(db.knex, parseSearchRequest('Observation', { _sort: 'value-quantity' }, options))).map(low);
    expect(asc).toEqual([...asc].sort((a, b) => a - b));
    expect(asc).toHaveLength(obs.length);
    const desc = (await searchIds(db.knex, parseSearchRequest('Observation', { _sort: '-value-quantity' }, options))).map(high);
    expect(desc).toEqual([...desc].sort((a, b) => b - a));
  });

  test('a malformed quantity is a 400 in both modes', () => {
    for (const strict of [true, false]) {
      for (const [key, value] of [['value-quantity', 'x'], ['value-quantity', '5|mg'], ['value-quantity', 'zz5||mg'], ['value-quantity', '5|a|b|c'], ['value-quantity:exact', '5']]) {
        expect(() => parseSearchRequest('Observation', { [key]: value }, { ...options, strict })).toThrow(expect.objectContaining({ status: 400 }));
      }
    }
  });
});
