import type { Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { applySearch } from '../../server/search/build-search-sql';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { indexedParams } from '../../server/search/supported-parameters';
import { foldText, officialValues } from './independent-evaluation';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';
import { createResourceTable, createSearchTestDatabase, insertResources, markDeleted, searchIds, type SearchTestDatabase } from './search-test-database';

const TYPES = ['Patient', 'Practitioner', 'Organization', 'Location', 'RelatedPerson', 'Condition', 'Observation'];
const options = { strict: true, defaultCount: 20, maxCount: 1000 };

/** The string parts a value offers, read from R4 search.html#string (HumanName and Address parts each count). */
function parts(values: unknown[]): string[] {
  const out: string[] = [];
  const add = (v: unknown): void => {
    if (typeof v === 'string') {
      if (v.trim()) out.push(v);
    } else if (Array.isArray(v)) v.forEach(add);
  };
  for (const v of values) {
    if (typeof v === 'string') add(v);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      for (const key of ['family', 'given', 'prefix', 'suffix', 'text', 'line', 'city', 'district', 'state', 'postalCode', 'country']) add(o[key]);
    }
  }
  return out;
}

const esc = (s: string): string => s.replace(/[\\,|$]/g, (c) => `\\${c}`);

describe('string search over HL7 examples and Synthea', () => {
  let db: SearchTestDatabase;
  let resources: Resource[];
  let deleted: Set<Resource>;

  beforeAll(async () => {
    db = await createSearchTestDatabase();
    for (const type of TYPES) await createResourceTable(db.knex, type);
    resources = uniqueById([...loadHl7Examples(TYPES), ...loadSynthea(TYPES, 2)]);
    await insertResources(db.knex, resources);
    deleted = new Set(resources.filter((_, i) => i % 10 === 4));
    for (const r of deleted) await markDeleted(db.knex, r);
  });

  afterAll(async () => {
    await db?.drop();
  });

  test.each(TYPES)('every string parameter of %s matches starts-with, :contains and :exact over every part', async (type) => {
    const live = resources.filter((r) => r.resourceType === type && !deleted.has(r));
    // `_text` (type string in R4, full-text over the narrative) has its own test, text-search.test.ts.
    const codes = [...indexedParams(type).values()].filter((p) => p.def.type === 'string' && p.def.code !== '_text').map((p) => p.def.code);
    expect(codes.length).toBeGreaterThan(0);
    let selective = 0;
    for (const code of codes) {
      const byId = new Map(live.map((r) => [r.id as string, parts(officialValues(r, code))]));
      const check = async (key: string, value: string, match: (ps: string[]) => boolean): Promise<void> => {
        const actual = await searchIds(db.knex, parseSearchRequest(type, { [key]: value }, options));
        const expected = [...byId].filter(([, ps]) => match(ps)).map(([id]) => id);
        expect({ query: `${type}?${key}=${value}`, ids: actual.sort() }).toEqual({ query: `${type}?${key}=${value}`, ids: expected.sort() });
        if (expected.length > 0 && expected.length < live.length) selective++;
      };
      await check(`${code}:missing`, 'true', (ps) => ps.length === 0);
      await check(`${code}:missing`, 'false', (ps) => ps.length > 0);
      const all = [...new Set([...byId.values()].flat())].sort();
      for (const part of [all[0], all[Math.floor(all.length / 2)], all[all.length - 1]].filter((p) => p !== undefined)) {
        const prefix = part.slice(0, Math.max(2, Math.ceil(part.length / 2)));
        await check(code, esc(prefix.toUpperCase()), (ps) => ps.some((p) => foldText(p).startsWith(foldText(prefix))));
        const middle = part.length > 3 ? part.slice(1, -1) : part;
        await check(`${code}:contains`, esc(middle), (ps) => ps.some((p) => foldText(p).includes(foldText(middle))));
        await check(`${code}:exact`, esc(part), (ps) => ps.includes(part));
        await check(`${code}:exact`, esc(part.toUpperCase() === part ? part.toLowerCase() : part.toUpperCase()), (ps) =>
          ps.includes(part.toUpperCase() === part ? part.toLowerCase() : part.toUpperCase())
        );
      }
    }
    expect(selective).toBeGreaterThan(0);
  });

  test('a name matches whatever its case and accents, on any given, family or prefix, and sorts by name', async () => {
    const patient: Resource = {
      resourceType: 'Patient',
      id: 'accented',
      name: [{ family: 'Müller-Lüdenscheidt', given: ['Zoë', 'Ana María'], prefix: ['Dr.'] }],
      address: [{ line: ['1 Rue de l’Église'], city: 'Besançon', postalCode: '25000' }],
    };
    await insertResources(db.knex, [patient]);
    const find = async (query: Record<string, string>): Promise<string[]> => searchIds(db.knex, parseSearchRequest('Patient', query, options));
    const matching: Record<string, string>[] = [{ name: 'muller' }, { name: 'ZOE' }, { name: 'ana mar' }, { name: 'dr.' }, { family: 'MÜLL' }, { given: 'zoe' }, { address: 'besan' }, { 'address-city': 'BESANCON' }, { 'name:contains': 'lüdensch' }, { 'name:exact': 'Zoë' }];
    for (const query of matching) {
      expect({ query, ids: await find(query) }).toEqual({ query, ids: expect.arrayContaining(['accented']) });
    }
    const notMatching: Record<string, string>[] = [{ name: 'uller' }, { name: 'zoe x' }, { 'name:exact': 'zoë' }, { 'name:exact': 'Zoe' }, { family: 'zoe' }];
    for (const query of notMatching) {
      expect({ query, ids: await find(query) }).toEqual({ query, ids: expect.not.arrayContaining(['accented']) });
    }
    const sorted = await find({ _sort: 'family' });
    const families = await Promise.all(sorted.map(async (id) => (await db.knex('Patient').where({ id }).first('__family')).__family as string | null));
    // A patient with several family names sorts by the smallest (R4 leaves repeats open; numbers and dates sort the same way).
    const present = families.filter((f): f is string => f !== null).map((f) => f.split('\u001f').filter((p) => p !== '').sort()[0]);
    expect(present).toEqual([...present].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  });

  test('starts-with and :contains can use the trigram index (sequential scans disabled on this small table)', async () => {
    for (const query of [{ name: 'smi' }, { 'name:contains': 'mit' }, { 'name:exact': 'Smith' }]) {
      const native = applySearch(db.knex('Patient').select('id'), parseSearchRequest('Patient', query, options)).toSQL().toNative();
      const plan = await db.knex.transaction(async (trx) => {
        await trx.raw('SET LOCAL enable_seqscan = off');
        const result = await trx.raw(`EXPLAIN (FORMAT JSON) ${native.sql.replace(/\$\d+/g, '?')}`, native.bindings as Knex.RawBinding[]);
        return JSON.stringify(result.rows[0]['QUERY PLAN']);
      });
      expect(plan).not.toContain('Seq Scan');
      expect(plan).toMatch(/Patient___name(_exact)?_idx/);
    }
  });

  test('a modifier strings do not have is a 400', () => {
    expect(() => parseSearchRequest('Patient', { 'name:text': 'x' }, { ...options, strict: false })).toThrow(/Modifier/);
  });
});
