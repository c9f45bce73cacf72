import type { Resource } from '@medplum/fhirtypes';
import { searchParamsForCapability } from '../../server/search/capability';
import { extractIndexValues } from '../../server/search/extract-index-values';
import { indexColumns } from '../../server/search/index-columns';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { searchParamDefs } from '../../server/search/search-parameter-definitions';
import { indexedParam } from '../../server/search/supported-parameters';
import { resourceTypes } from '../../server/validation/structure-definitions';
import { loadHl7Examples } from './search-fixtures';
import { createResourceTable, createSearchTestDatabase, insertResources, searchIds, type SearchTestDatabase } from './search-test-database';

const options = { strict: true, defaultCount: 20, maxCount: 1000 };

/** A value of the right shape for a parameter type, to exercise its SQL. */
const SAMPLE_VALUE: Record<string, string> = {
  token: 'http://example.org|x',
  date: 'ge2020',
  reference: 'Patient/x',
  string: 'a',
  number: 'ge0.5',
  quantity: 'lt5.4|http://unitsofmeasure.org|mg',
  uri: 'http://example.org/fhir/ValueSet/x',
  special: '42.25|-83.69|10|km',
  composite: '',
};

/** Modifiers each type implements, besides `:missing`. */
const MODIFIERS: Record<string, string[]> = { token: [':not', ':text'], uri: [':below', ':above'], string: [':exact', ':contains'] };

/** A composite's value: one sample per component, by the component's own type, joined by `$`. */
function compositeSample(type: string, code: string): string {
  const components = indexedParam(type, code)?.def.components ?? [];
  const byUrl = new Map([...searchParamDefs(type).values()].map((d) => [d.url, d.type]));
  return components.map((c) => (byUrl.get(c.definition) === 'quantity' ? '5' : byUrl.get(c.definition) === 'number' ? '5' : byUrl.get(c.definition) === 'date' ? 'ge2020' : 'x')).join('$');
}

describe('index columns and the CapabilityStatement', () => {
  let db: SearchTestDatabase;

  beforeAll(async () => {
    db = await createSearchTestDatabase();
    for (const type of resourceTypes) await createResourceTable(db.knex, type);
  });

  afterAll(async () => {
    await db?.drop();
  });

  test('every R4 type gets distinct, prefixed column names whose index names fit PostgreSQL’s 63 bytes', () => {
    expect(resourceTypes).toHaveLength(146);
    for (const type of resourceTypes) {
      const names = indexColumns(type).map((c) => c.name);
      expect(new Set(names).size).toBe(names.length);
      for (const name of names) {
        expect(name.startsWith('__')).toBe(true);
        expect(Buffer.byteLength(`${type}_${name}_idx`)).toBeLessThanOrEqual(63);
      }
    }
  });

  test('extraction fills exactly the declared columns, and every HL7 example can be inserted with them', async () => {
    const examples = loadHl7Examples(resourceTypes);
    for (const resource of examples) {
      const declared = indexColumns(resource.resourceType).map((c) => c.name).sort();
      expect(Object.keys(extractIndexValues(resource)).sort()).toEqual(declared);
    }
    await insertResources(db.knex, examples as Resource[]);
    const count = await db.knex('Patient').count<{ count: number }[]>('* as count');
    expect(Number(count[0].count)).toBe(examples.filter((r) => r.resourceType === 'Patient').length);
  });

  test('every parameter the CapabilityStatement lists parses and runs, with each of its modifiers', async () => {
    let queries = 0;
    for (const type of resourceTypes) {
      const params = searchParamsForCapability(type);
      expect(params.map((p) => p.name)).toEqual(expect.arrayContaining(['_id', '_lastUpdated']));
      for (const param of params) {
        const value =
          param.name === '_id' ? 'x' : param.name === '_filter' ? '_id eq x or not (_lastUpdated gt 2020)' : param.type === 'composite' ? compositeSample(type, param.name) : SAMPLE_VALUE[param.type];
        expect(value).toBeDefined();
        const keys =
          param.name.startsWith('_id') || param.name === '_lastUpdated' || param.name === '_list' || param.name === '_filter'
            ? ['']
            : // `_text` (a string in R4) is full-text search: it takes no string modifier.
              param.name === '_text'
              ? ['', ':missing']
              : ['', ...(MODIFIERS[param.type] ?? []), ':missing'];
        for (const suffix of keys) {
          const query = { [`${param.name}${suffix}`]: suffix === ':missing' ? 'false' : value };
          await searchIds(db.knex, parseSearchRequest(type, query, options));
          queries++;
        }
      }
    }
    expect(queries).toBeGreaterThan(1000);
  });

  test('the CapabilityStatement lists nothing that is not indexed', () => {
    const patient = searchParamsForCapability('Patient').map((p) => p.name);
    expect(patient).toEqual(expect.arrayContaining(['identifier', 'gender', 'active', '_tag']));
    for (const type of resourceTypes) {
      for (const param of searchParamsForCapability(type)) {
        expect(Object.keys(SAMPLE_VALUE)).toContain(param.type);
        // R4 describes `_list` and `_filter` in search.html but publishes no SearchParameter for them.
        if (param.name === '_list' || param.name === '_filter') expect(param.definition).toBeUndefined();
        else expect(param.definition).toMatch(/^http:\/\/hl7\.org\/fhir\/SearchParameter\//);
      }
    }
    expect(searchParamsForCapability('NotAType')).toEqual([]);
  });
});
