import type { Resource } from '@medplum/fhirtypes';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { indexedParams } from '../../server/search/supported-parameters';
import { officialParameter, officialValues } from './independent-evaluation';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';
import { searchIds, type SearchTestDatabase, storeSearchFixture } from './search-test-database';

const TYPES = ['ValueSet', 'CodeSystem', 'StructureDefinition', 'Questionnaire', 'CarePlan', 'Observation', 'Patient', 'ConceptMap'];
const options = { strict: true, defaultCount: 20, maxCount: 1000 };

const hierarchical = (u: string): boolean => /^[a-z][a-z0-9+.-]*:\/\/[^/]/i.test(u);
const bare = (u: string): string => u.split(/[?#|]/)[0].replace(/\/+$/, '');

/** R4 search.html#uri, read independently: exact (a canonical's `|version` optional), :below and :above by path segment. */
function matches(stored: string, query: string, modifier: string, resource: Record<string, unknown>, code: string): boolean {
  const candidates = [stored, stored.split('|')[0]];
  // A conformance resource's url parameters (`url`, CodeSystem `system`) also match `url|version`.
  const ofUrl = (officialParameter(resource.resourceType as string, code).expression ?? '').split(' | ').includes(`${resource.resourceType}.url`);
  if (ofUrl && stored === resource.url && typeof resource.version === 'string') candidates.push(`${stored}|${resource.version}`);
  if (modifier === 'below' && hierarchical(query)) {
    const q = query.replace(/\/+$/, '');
    return hierarchical(stored) && (bare(stored) === q || bare(stored).startsWith(`${q}/`));
  }
  if (modifier === 'above' && hierarchical(query)) {
    const q = bare(query);
    return candidates.some((c) => c === query || (hierarchical(c) && !/[?#|]/.test(c) && (c.replace(/\/+$/, '') === q || q.startsWith(`${c.replace(/\/+$/, '')}/`))));
  }
  return candidates.includes(query);
}

describe('uri search', () => {
  let db: SearchTestDatabase;
  let live: Resource[];

  beforeAll(async () => {
    const resources = uniqueById([...loadHl7Examples(TYPES), ...loadSynthea(['Patient', 'Observation'], 1)]);
    ({ db, live } = await storeSearchFixture(TYPES, resources, (_, i) => i % 10 === 7));
  });

  afterAll(async () => {
    await db?.drop();
  });

  const find = (type: string, query: Record<string, string | string[]>): Promise<string[]> =>
    searchIds(db.knex, parseSearchRequest(type, query, options)).then((ids) => ids.sort());

  test.each(TYPES)('every uri parameter of %s: exact, :below, :above, url|version and :missing', async (type) => {
    const params = [...indexedParams(type).values()].filter((p) => p.def.type === 'uri').map((p) => p.def.code);
    expect(params.length).toBeGreaterThan(0);
    const ofType = live.filter((r) => r.resourceType === type);
    let selective = 0;
    for (const code of params) {
      const values = new Map(ofType.map((r) => [r, officialValues(r, code).filter((v): v is string => typeof v === 'string' && v !== '')]));
      for (const missing of [true, false]) {
        expect({ code, missing, ids: await find(type, { [`${code}:missing`]: String(missing) }) }).toEqual({
          code,
          missing,
          ids: [...values].filter(([, v]) => (v.length === 0) === missing).map(([r]) => r.id as string).sort(),
        });
      }
      const queries = new Set<string>();
      for (const [r, vs] of [...values].filter(([, v]) => v.length > 0).slice(0, 6)) {
        for (const v of vs.slice(0, 2)) {
          queries.add(v);
          queries.add(v.replace(/\/[^/]*$/, ''));
          queries.add(`${v}/child/1`);
          queries.add(`${v.replace(/\/[^/]*$/, '')}/`);
          if (typeof (r as { version?: unknown }).version === 'string') queries.add(`${v}|${(r as { version?: string }).version}`);
        }
      }
      for (const query of queries) {
        for (const modifier of ['', 'below', 'above']) {
          const key = modifier ? `${code}:${modifier}` : code;
          const expected = [...values].filter(([r, vs]) => vs.some((v) => matches(v, query, modifier, r as unknown as Record<string, unknown>, code))).map(([r]) => r.id as string).sort();
          const escaped = query.replace(/[\\,]/g, (c) => `\\${c}`);
          expect({ query: `${type}?${key}=${query}`, ids: await find(type, { [key]: escaped }) }).toEqual({ query: `${type}?${key}=${query}`, ids: expected });
          if (expected.length > 0 && expected.length < ofType.length) selective++;
        }
      }
    }
    if (['ValueSet', 'CodeSystem', 'StructureDefinition', 'Observation'].includes(type)) expect(selective).toBeGreaterThan(0);
  });

  test(':below=http://hl7.org/fhir finds the HL7 value sets; :above finds the value set a longer URL is under', async () => {
    const below = await find('ValueSet', { 'url:below': 'http://hl7.org/fhir/' });
    const all = live.filter((r) => r.resourceType === 'ValueSet' && String((r as { url?: string }).url).startsWith('http://hl7.org/fhir/'));
    expect(below).toEqual(all.map((r) => r.id).sort());
    const one = all[0] as { id?: string; url?: string; version?: string };
    expect(await find('ValueSet', { 'url:above': `${one.url}/_history/5` })).toContain(one.id);
    expect(await find('ValueSet', { url: `${one.url}|${one.version}` })).toEqual([one.id]);
    expect(await find('ValueSet', { url: `${one.url}|0.0.0-not-a-version` })).toEqual([]);
    expect(await find('ValueSet', { 'url:below': 'http://hl7.org/fh' })).toEqual([]);
  });

  test('a modifier uri parameters do not have is a 400 in both modes', () => {
    for (const strict of [true, false]) {
      for (const modifier of ['exact', 'contains', 'not', 'text']) {
        expect(() => parseSearchRequest('ValueSet', { [`url:${modifier}`]: 'http://x' }, { ...options, strict })).toThrow(expect.objectContaining({ status: 400 }));
      }
    }
  });
});
