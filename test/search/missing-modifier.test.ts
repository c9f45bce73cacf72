import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import { evalFhirPathTyped, toTypedValue } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { indexedParams } from '../../server/search/supported-parameters';
import { isResourceType } from '../../server/validation/structure-definitions';
import { officialParameter, officialValues, parameterValues, type TypedValue } from './independent-evaluation';
import { oracleQuantity } from './numeric-oracle';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';
import { searchIds, type SearchTestDatabase, storeSearchFixture } from './search-test-database';
import { SHARED_DATA_DIR } from '../../scripts/shared-data-dir';

/**
 * `:missing` (R4 search.html#missing) on every indexed parameter of every resource type
 * the HL7 examples hold, of every parameter type: `:missing=true` and `:missing=false`
 * must split the live resources exactly by whether the official expression (evaluated
 * by @medplum/core's FHIRPath interpreter) yields a value the parameter can search.
 */
const DATA = join(SHARED_DATA_DIR, 'hl7-r4-examples');
const options = { strict: true, defaultCount: 20, maxCount: 100000 };

type Json = Record<string, any>;
const text = (v: unknown): boolean => typeof v === 'string' && v.trim() !== '';
const DATE = /^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** Whether one value gives the parameter something to match, per parameter type, as the test reads R4. */
function searchable(paramType: string, { type, value }: TypedValue): boolean {
  const v = value as Json;
  switch (paramType) {
    case 'string':
      if (type === 'HumanName') return ['family', 'given', 'prefix', 'suffix', 'text'].some((k) => [v[k]].flat().some(text));
      if (type === 'Address') return ['line', 'city', 'district', 'state', 'postalCode', 'country', 'text'].some((k) => [v[k]].flat().some(text));
      // @medplum/core's `as(string)` also lets a dateTime through (abatement-string); R4 types decide here.
      return !['date', 'dateTime', 'instant', 'time'].includes(type) && text(value);
    case 'token':
      if (type === 'Coding') return text(v.code) || text(v.system) || text(v.display);
      if (type === 'CodeableConcept') return text(v.text) || (v.coding ?? []).some((c: Json) => text(c.code) || text(c.system) || text(c.display));
      if (type === 'Identifier') return text(v.value) || text(v.system) || (v.type?.coding ?? []).some((c: Json) => text(c.display)) || text(v.type?.text);
      if (type === 'ContactPoint') return text(v.value);
      return typeof value === 'boolean' || typeof value === 'number' || text(value);
    case 'reference':
      if (typeof value === 'string') return text(value) && !value.startsWith('#');
      // Bundle `composition` / `message` are the first entry's resource itself.
      if (typeof v?.resourceType === 'string') return text(v.id);
      return (text(v?.reference) && !String(v.reference).startsWith('#')) || text(v?.identifier?.value);
    case 'date':
      if (typeof value === 'string') return DATE.test(value);
      if (type === 'Period') return text(v.start) || text(v.end);
      if (type === 'Timing') return (v.event ?? []).some(text) || text(v.repeat?.boundsPeriod?.start) || text(v.repeat?.boundsPeriod?.end);
      return false;
    case 'number':
      return typeof value === 'number';
    case 'quantity':
      return typeof value === 'object' && value !== null && oracleQuantity(v) !== undefined;
    case 'uri':
      return text(value);
    default:
      throw new Error(`no oracle for ${paramType}`);
  }
}

/**
 * The parameter's values. References come from fhirpath.js (officialValues), which reads
 * `where(resolve() is Patient)` from the reference text, absolute URLs included
 * (`http://x/fhir/Patient/1` is a Patient); @medplum/core cannot resolve those. `X.as(uri)`
 * keeps canonicals too: R4's canonical is a specialisation of uri, and `as` keeps subtypes.
 */
function valuesOf(resource: Resource, code: string, paramType: string): TypedValue[] {
  if (paramType === 'reference') return officialValues(resource, code).map((value) => ({ type: 'Reference', value }));
  const expression = officialParameter(resource.resourceType, code).expression ?? '';
  if (paramType === 'uri' && expression.includes('.as(uri)')) {
    parameterValues(resource, code); // loads the type definitions the interpreter needs
    const widened = expression
      .replace(/\bResource\./g, `${resource.resourceType}.`)
      .replace(/([A-Za-z.]+)\.as\(uri\)/g, '($1.ofType(uri) | $1.ofType(canonical))');
    return evalFhirPathTyped(widened, [toTypedValue(resource)]).map((tv) => ({ type: tv.type, value: tv.value }));
  }
  return parameterValues(resource, code);
}

/** Every type the HL7 examples hold (file names `<Type>-<id>.json`). */
const TYPES = [...new Set(readdirSync(DATA).map((f) => f.slice(0, f.indexOf('-'))))].filter(isResourceType).sort();
const ORACLE_TYPES = new Set(['string', 'token', 'reference', 'date', 'number', 'quantity', 'uri']);

describe(':missing on every parameter of every type in the HL7 examples', () => {
  let db: SearchTestDatabase;
  let live: Resource[];

  beforeAll(async () => {
    const resources = uniqueById([...loadHl7Examples(TYPES), ...loadSynthea(['Patient', 'Observation', 'Encounter', 'Condition', 'Claim'], 1)]);
    ({ db, live } = await storeSearchFixture(TYPES, resources, (_, i) => i % 17 === 8));
  });

  afterAll(async () => {
    await db?.drop();
  });

  test('there are types with parameters of every type to check', () => {
    const seen = new Set(TYPES.flatMap((t) => [...indexedParams(t).values()].map((p) => p.def.type)));
    for (const type of ORACLE_TYPES) expect(seen).toContain(type);
    expect(TYPES.length).toBeGreaterThan(100);
  });

  test.each(TYPES)('%s: :missing=true and :missing=false split the live resources by whether each parameter has a searchable value', async (type) => {
    const ofType = live.filter((r) => r.resourceType === type);
    // `_text` has no expression to evaluate: text-search.test.ts checks its :missing against the narratives.
    const params = [...indexedParams(type).values()].filter((p) => ORACLE_TYPES.has(p.def.type) && p.def.code !== '_text');
    for (const param of params) {
      const code = param.def.code;
      const present = new Set(ofType.filter((r) => valuesOf(r, code, param.def.type).some((v) => searchable(param.def.type, v))).map((r) => r.id as string));
      for (const missing of [true, false]) {
        const actual = (await searchIds(db.knex, parseSearchRequest(type, { [`${code}:missing`]: String(missing) }, options))).sort();
        const expected = ofType.map((r) => r.id as string).filter((id) => present.has(id) !== missing).sort();
        expect({ query: `${type}?${code}:missing=${missing}`, ids: actual }).toEqual({ query: `${type}?${code}:missing=${missing}`, ids: expected });
      }
    }
  });

  test(':missing takes only true or false, and _id/_lastUpdated (always present) take no :missing', () => {
    for (const strict of [true, false]) {
      for (const [key, value] of [['name:missing', 'yes'], ['name:missing', ''], ['birthdate:missing', '1'], ['_lastUpdated:missing', 'true'], ['_id:missing', 'true']]) {
        expect(() => parseSearchRequest('Patient', { [key]: value || 'TRUE' }, { ...options, strict })).toThrow(expect.objectContaining({ status: 400 }));
      }
    }
  });
});
