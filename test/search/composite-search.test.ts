import type { Resource } from '@medplum/fhirtypes';
import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { indexedParams } from '../../server/search/supported-parameters';
import { foldText, officialParameter } from './independent-evaluation';
import { oracleQuantity, quantityMatches, rangeMatches, sampleNumbers, searchNumber } from './numeric-oracle';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';
import { searchIds, type SearchTestDatabase, storeSearchFixture } from './search-test-database';

const TYPES = ['Observation', 'DocumentReference', 'Group', 'MolecularSequence', 'PlanDefinition', 'ValueSet', 'Questionnaire'];
const options = { strict: true, defaultCount: 20, maxCount: 1000 };
type Json = Record<string, any>;

/** Blood pressure where the systolic code goes with 120 and the diastolic with 80, never across. */
const BP: Resource = {
  resourceType: 'Observation',
  id: 'bp-crossed',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '85354-9' }] },
  component: [
    { code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: { value: 120, system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } },
    { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: { value: 80, system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } },
  ],
};

/** A component's values for one base element, per the official expression (fhirpath.js). */
function componentValues(resource: Resource, basePath: string, element: unknown, expression: string): unknown[] {
  // `as(DateTime)` means the FHIR dateTime; fhirpath.js reads it strictly as System.DateTime.
  const fixed = expression.replace(/\.as\(DateTime\)/g, '.ofType(dateTime)').replace(/\.as\((\w+)\)/g, '.ofType($1)');
  if (fixed.startsWith('%resource.')) return fhirpath.evaluate(resource, fixed.replace('%resource', resource.resourceType), undefined, r4Model) as unknown[];
  return fhirpath.evaluate(element as Json, { base: basePath, expression: fixed } as any, undefined, r4Model) as unknown[];
}

/** Base elements of a composite per its official expression, each with its component values. */
function elements(resource: Resource, code: string): unknown[][][] {
  const sp = officialParameter(resource.resourceType, code);
  const result: unknown[][][] = [];
  for (const term of (sp.expression ?? '').split(' | ').map((t) => t.trim())) {
    if (term.split('.')[0] !== resource.resourceType) continue;
    for (const element of fhirpath.evaluate(resource, term, undefined, r4Model) as unknown[]) {
      result.push((sp.component ?? []).map((c) => componentValues(resource, term, element, c.expression ?? '')));
    }
  }
  return result;
}

/** R4 swapped DocumentReference `relationship`'s component definitions: `code` is the token, `target` the reference. */
const R4_ERRATA: Record<string, string> = {
  'http://hl7.org/fhir/SearchParameter/DocumentReference-relatesto': 'token',
  'http://hl7.org/fhir/SearchParameter/DocumentReference-relation': 'reference',
};

function componentType(resourceType: string, definition: string): string {
  if (R4_ERRATA[definition]) return R4_ERRATA[definition];
  for (const p of indexedParams(resourceType).values()) if (p.def.url === definition) return p.def.type;
  throw new Error(`no component ${definition}`);
}

function codings(v: Json | string): { system?: string; code?: string }[] {
  if (typeof v === 'string') return [{ code: v }];
  if (Array.isArray(v.coding)) return v.coding;
  if ('value' in v && !('code' in v)) return [{ system: v.system, code: v.value }];
  return [v];
}

function dayRange(text: string): [number, number] {
  const [y, m = '01', d = '01'] = text.slice(0, 10).split('-');
  const start = Date.parse(`${y}-${m}-${d}T00:00:00Z`);
  const hasTime = text.length > 10;
  if (hasTime) {
    const t = Date.parse(/[Z+-]\d{2}:?\d{2}$|Z$/.test(text.slice(10)) ? text : `${text}Z`);
    return [t, t + (text.includes('.') ? 1 : 1000)];
  }
  const end = new Date(start);
  if (text.length === 4) end.setUTCFullYear(end.getUTCFullYear() + 1);
  else if (text.length === 7) end.setUTCMonth(end.getUTCMonth() + 1);
  else end.setUTCDate(end.getUTCDate() + 1);
  return [start, end.getTime()];
}

/** Values a search of the component's type can match at all (a CodeableConcept with only text has no token). */
function searchable(type: string, values: unknown[]): unknown[] {
  return values.filter((v) => queryParts(type, v).length > 0);
}

/** One query part against one component's values (the oracle for each component type). */
function partMatches(type: string, values: unknown[], part: string): boolean {
  return values.some((v) => {
    switch (type) {
      case 'token': {
        const [system, code] = part.includes('|') ? part.split('|') : [undefined, part];
        return codings(v as Json).some((c) => (system === undefined || (c.system ?? '') === system) && c.code === code);
      }
      case 'quantity': {
        const q = oracleQuantity(v as Json);
        return q !== undefined && quantityMatches(q, part);
      }
      case 'number':
        return rangeMatches(v as number, v as number, searchNumber(part));
      case 'string':
        return foldText(v as string).startsWith(foldText(part));
      case 'reference':
        return (v as Json).reference === part;
      case 'date': {
        const p = v as Json | string;
        const [lo, hi] = typeof p === 'string' ? dayRange(p) : [p.start ? dayRange(p.start)[0] : -Infinity, p.end ? dayRange(p.end)[1] : Infinity];
        const [s, e] = dayRange(part.slice(2));
        return part.startsWith('ge') ? hi - 1 >= e || (lo >= s && hi <= e) : lo >= s && hi <= e;
      }
      default:
        throw new Error(type);
    }
  });
}

/** Query parts that one component value would match. */
function queryParts(type: string, v: unknown): string[] {
  switch (type) {
    case 'token':
      if (typeof v === 'boolean') return [String(v)];
      if (typeof v !== 'object' || v === null || !('coding' in v || 'code' in v || 'value' in v) || 'unit' in v || 'reference' in v) return typeof v === 'string' ? [v] : [];
      return codings(v as Json).filter((c) => c.code).flatMap((c) => [c.code as string, `${c.system ?? ''}|${c.code}`]).slice(0, 2);
    case 'quantity': {
      const q = oracleQuantity(v as Json);
      if (!q) return [];
      const n = Number.isFinite(q.lo) ? q.lo : q.hi;
      // A 16-digit value's precision range is beyond this oracle's doubles: search by range only.
      if (sampleNumbers([n]).length === 0) return [`gt${Math.trunc(n) - 1}`];
      return [`${n}`, `gt${n}`, `le${n}${q.code ? `|${q.system ?? ''}|${q.code}` : ''}`];
    }
    case 'number':
      return [`${v}`, `ge${v}`];
    case 'string':
      return [(v as string).slice(0, 4)];
    case 'reference':
      return (v as Json).reference ? [(v as Json).reference] : [];
    case 'date': {
      const text = typeof v === 'string' ? v : ((v as Json).start ?? (v as Json).end);
      return text ? [`eq${text.slice(0, 10)}`, `ge${text.slice(0, 7)}`] : [];
    }
    default:
      return [];
  }
}

const escape = (s: string): string => s.replace(/[\\,$]/g, (c) => `\\${c}`);

describe('composite search', () => {
  let db: SearchTestDatabase;
  let live: Resource[];

  beforeAll(async () => {
    const resources = uniqueById([...loadHl7Examples(TYPES), ...loadSynthea(['Observation'], 1), BP]);
    ({ db, live } = await storeSearchFixture(TYPES, resources, (_, i) => i % 17 === 3));
  });

  afterAll(async () => {
    await db?.drop();
  });

  const find = (type: string, query: Record<string, string | string[]>): Promise<string[]> =>
    searchIds(db.knex, parseSearchRequest(type, query, options)).then((ids) => ids.sort());

  test.each(TYPES)('every composite parameter of %s matches only when all parts hold in the same element', async (type) => {
    const params = [...indexedParams(type).values()].filter((p) => p.def.type === 'composite');
    expect(params.length).toBeGreaterThan(0);
    const ofType = live.filter((r) => r.resourceType === type);
    let total = 0;
    for (const { def } of params) {
      const types = (def.components ?? []).map((c) => componentType(type, c.definition));
      const byId = new Map(ofType.map((r) => [r.id as string, elements(r, def.code).map((el) => el.map((values, k) => searchable(types[k], values)))]));
      const complete = (els: unknown[][][]): boolean => els.some((el) => el.every((values) => values.length > 0));
      for (const missing of [true, false]) {
        const expected = [...byId].filter(([, els]) => complete(els) !== missing).map(([id]) => id).sort();
        expect({ code: def.code, missing, ids: await find(type, { [`${def.code}:missing`]: String(missing) }) }).toEqual({ code: def.code, missing, ids: expected });
      }
      // Queries from real elements, and from parts of different elements of one resource.
      const queries = new Set<string>();
      for (const els of [...byId.values()].filter(complete).slice(0, 12)) {
        const full = els.filter((el) => el.every((values) => values.length > 0));
        for (const [i, el] of full.entries()) {
          const other = full[(i + 1) % full.length];
          const partsOf = (e: unknown[][], k: number): string[] => e[k].flatMap((v) => queryParts(types[k], v));
          for (const first of partsOf(el, 0).slice(0, 2)) {
            for (const rest of [partsOf(el, 1), partsOf(other, 1)].flat().slice(0, 4)) {
              const tail = types.slice(2).map((_, k) => partsOf(el, k + 2)[0] ?? '');
              queries.add([first, rest, ...tail].map(escape).join('$'));
            }
          }
        }
      }
      total += queries.size;
      for (const query of queries) {
        const parts = query.split(/(?<!\\)\$/).map((p) => p.replace(/\\(.)/g, '$1'));
        if (parts.some((p) => p === '')) continue;
        const expected = [...byId]
          .filter(([, els]) => els.some((el) => el.every((values, k) => partMatches(types[k], values, parts[k]))))
          .map(([id]) => id)
          .sort();
        expect({ query: `${type}?${def.code}=${query}`, ids: await find(type, { [def.code]: query }) }).toEqual({ query: `${type}?${def.code}=${query}`, ids: expected });
      }
    }
    // The HL7 examples of some types have no element with every component.
    if (['Observation', 'DocumentReference', 'PlanDefinition'].includes(type)) expect(total).toBeGreaterThan(0);
  });

  test('component code and value must come from the same component', async () => {
    const q = (v: string): Promise<string[]> => find('Observation', { 'component-code-value-quantity': v });
    expect(await q('http://loinc.org|8480-6$120')).toContain('bp-crossed');
    expect(await q('http://loinc.org|8480-6$gt100|http://unitsofmeasure.org|mm[Hg]')).toContain('bp-crossed');
    expect(await q('http://loinc.org|8480-6$80')).not.toContain('bp-crossed');
    expect(await q('http://loinc.org|8462-4$gt100')).not.toContain('bp-crossed');
    expect(await q('http://loinc.org|8462-4$gt100,http://loinc.org|8480-6$lt130')).toContain('bp-crossed');
    expect(await find('Observation', { 'combo-code-value-quantity': '8462-4$80' })).toContain('bp-crossed');
    expect(await find('Observation', { 'code-value-quantity': '8462-4$80' })).not.toContain('bp-crossed');
  });

  test('a composite value with the wrong number of parts or a malformed part is a 400 in both modes', () => {
    for (const strict of [true, false]) {
      for (const value of ['x', 'a$b$c', '8480-6$abc', '8480-6$', '$5', '8480-6$zz5']) {
        expect(() => parseSearchRequest('Observation', { 'code-value-quantity': value }, { ...options, strict })).toThrow(expect.objectContaining({ status: 400 }));
      }
      expect(() => parseSearchRequest('Observation', { 'code-value-date': 'x$2020-13-45' }, { ...options, strict })).toThrow(expect.objectContaining({ status: 400 }));
      expect(() => parseSearchRequest('Observation', { 'code-value-quantity:exact': 'x$5' }, { ...options, strict })).toThrow(expect.objectContaining({ status: 400 }));
    }
  });
});
