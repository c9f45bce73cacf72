import type { Resource } from '@medplum/fhirtypes';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { indexedParams } from '../../server/search/supported-parameters';
import { officialValues } from './independent-evaluation';
import { PREFIXES, rangeMatches, sampleNumbers, searchNumber } from './numeric-oracle';
import { loadHl7Examples, uniqueById } from './search-fixtures';
import { createResourceTable, createSearchTestDatabase, insertResources, markDeleted, searchIds, type SearchTestDatabase } from './search-test-database';

const TYPES = ['RiskAssessment', 'MolecularSequence', 'ChargeItem'];
const options = { strict: true, defaultCount: 20, maxCount: 1000 };

/** Extra resources with values at the edges of the implicit precision ranges. */
const EDGES: Resource[] = [99.4, 99.5, 100, 100.4999, 100.5, 95, 150, -3].map((p, i) => ({
  resourceType: 'RiskAssessment',
  id: `edge-${i}`,
  status: 'final',
  subject: { reference: 'Patient/x' },
  prediction: [{ probabilityDecimal: p }, ...(i === 2 ? [{ probabilityDecimal: 7 }] : [])],
}));

describe('number search', () => {
  let db: SearchTestDatabase;
  let live: Resource[];

  beforeAll(async () => {
    db = await createSearchTestDatabase();
    for (const type of TYPES) await createResourceTable(db.knex, type);
    const resources = uniqueById([...loadHl7Examples(TYPES), ...EDGES]);
    await insertResources(db.knex, resources);
    const deleted = resources.filter((r) => r.resourceType === 'RiskAssessment' && r.id === 'genetic');
    for (const r of deleted) await markDeleted(db.knex, r);
    live = resources.filter((r) => !deleted.includes(r));
  });

  afterAll(async () => {
    await db?.drop();
  });

  const find = (type: string, query: Record<string, string | string[]>): Promise<string[]> =>
    searchIds(db.knex, parseSearchRequest(type, query, options)).then((ids) => ids.sort());

  test.each(TYPES)('every number parameter of %s matches each prefix, with :missing, as the official expression says', async (type) => {
    const params = [...indexedParams(type).values()].filter((p) => p.def.type === 'number').map((p) => p.def.code);
    expect(params.length).toBeGreaterThan(0);
    const ofType = live.filter((r) => r.resourceType === type);
    for (const code of params) {
      const values = new Map(ofType.map((r) => [r.id as string, officialValues(r, code).filter((v): v is number => typeof v === 'number')]));
      for (const missing of [true, false]) {
        expect({ code, missing, ids: await find(type, { [`${code}:missing`]: String(missing) }) }).toEqual({
          code,
          missing,
          ids: [...values].filter(([, v]) => (v.length === 0) === missing).map(([id]) => id).sort(),
        });
      }
      for (const sample of sampleNumbers([...values.values()].flat())) {
        for (const prefix of PREFIXES) {
          const query = `${prefix}${sample}`;
          const search = searchNumber(query);
          const expected = [...values].filter(([, vs]) => vs.some((v) => rangeMatches(v, v, search))).map(([id]) => id).sort();
          expect({ query: `${type}?${code}=${query}`, ids: await find(type, { [code]: query }) }).toEqual({ query: `${type}?${code}=${query}`, ids: expected });
        }
      }
    }
  });

  test('the implicit precision: 100 is [99.5, 100.5), 100.00 is [99.995, 100.005), 1e2 is [50, 150); gt is exact', async () => {
    expect(await find('RiskAssessment', { probability: '100' })).toEqual(['edge-1', 'edge-2', 'edge-3']);
    expect(await find('RiskAssessment', { probability: '100.00' })).toEqual(['edge-2']);
    expect(await find('RiskAssessment', { probability: '1e2' })).toEqual(['edge-0', 'edge-1', 'edge-2', 'edge-3', 'edge-4', 'edge-5']);
    expect(await find('RiskAssessment', { probability: '1.0e2' })).toEqual(['edge-0', 'edge-1', 'edge-2', 'edge-3', 'edge-4', 'edge-5']);
    expect(await find('RiskAssessment', { probability: 'gt100' })).toEqual(['edge-3', 'edge-4', 'edge-6']);
    expect(await find('RiskAssessment', { probability: 'ap100' })).toEqual(['edge-0', 'edge-1', 'edge-2', 'edge-3', 'edge-4', 'edge-5']);
    expect(await find('RiskAssessment', { probability: 'eq-3' })).toEqual(['edge-7']);
  });

  test('commas are OR, repetition is AND, and any of several values can match', async () => {
    expect(await find('RiskAssessment', { probability: '95,150' })).toEqual(['edge-5', 'edge-6']);
    // edge-2 holds 100 and 7: each condition may be met by a different value.
    expect(await find('RiskAssessment', { probability: ['lt10', 'gt99.9'] })).toEqual(['edge-2']);
  });

  test('_sort orders by the smallest value ascending and the largest descending, missing last', async () => {
    const values = new Map(live.filter((r) => r.resourceType === 'RiskAssessment').map((r) => [r.id as string, officialValues(r, 'probability') as number[]]));
    const asc = await searchIds(db.knex, parseSearchRequest('RiskAssessment', { _sort: 'probability' }, options));
    const mins = asc.map((id) => (values.get(id)?.length ? Math.min(...(values.get(id) as number[])) : Infinity));
    expect(mins).toEqual([...mins].sort((a, b) => a - b));
    const desc = await searchIds(db.knex, parseSearchRequest('RiskAssessment', { _sort: '-probability' }, options));
    const maxes = desc.map((id) => (values.get(id)?.length ? Math.max(...(values.get(id) as number[])) : -Infinity));
    expect(maxes).toEqual([...maxes].sort((a, b) => b - a));
    expect(asc).toHaveLength(values.size);
  });

  test('a malformed number, an unknown prefix or a modifier is a 400 in both modes', () => {
    for (const strict of [true, false]) {
      for (const [key, value] of [['probability', 'abc'], ['probability', 'xx5'], ['probability', '1.2.3'], ['probability', 'gt'], ['probability:exact', '5']]) {
        expect(() => parseSearchRequest('RiskAssessment', { [key]: value }, { ...options, strict })).toThrow(expect.objectContaining({ status: 400 }));
      }
    }
  });
});
