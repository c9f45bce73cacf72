import type { Resource } from '@medplum/fhirtypes';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { indexedParams } from '../../server/search/supported-parameters';
import { resourceTypes } from '../../server/validation/structure-definitions';
import { officialParameter, officialValues } from './independent-evaluation';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';
import { createResourceTable, createSearchTestDatabase, insertResources, markDeleted, searchIds, type SearchTestDatabase } from './search-test-database';

const TYPES = ['Patient', 'Observation', 'Encounter', 'Condition', 'MedicationRequest', 'Procedure', 'Immunization', 'DiagnosticReport', 'CarePlan', 'AllergyIntolerance'];
const options = { strict: true, defaultCount: 20, maxCount: 1000 };

/** The references a value makes, as the test reads R4: `Type/id` for relative ones, URLs as written, `#x` not searchable. */
function references(values: unknown[]): string[] {
  const out = new Set<string>();
  for (const v of values) {
    const text = typeof v === 'string' ? v : (v as { reference?: string; url?: string }).reference ?? (v as { url?: string }).url;
    if (!text || text.startsWith('#')) continue;
    const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]+)(\/_history\/.*)?$/.exec(text);
    out.add(m ? `${m[1]}/${m[2]}` : text.replace(/\/_history\/[^/]+$/, ''));
  }
  return [...out];
}

/** A value is there for :missing when it makes a reference, or carries an identifier (searchable with :identifier). */
function hasIdentifier(values: unknown[]): boolean {
  return values.some((v) => {
    const value = (v as { identifier?: { value?: unknown } } | null)?.identifier?.value;
    return typeof value === 'string' && value !== '';
  });
}

describe('reference search over HL7 examples and Synthea', () => {
  let db: SearchTestDatabase;
  let resources: Resource[];
  let deleted: Set<Resource>;

  beforeAll(async () => {
    db = await createSearchTestDatabase();
    for (const type of TYPES) await createResourceTable(db.knex, type);
    resources = uniqueById([...loadHl7Examples(TYPES), ...loadSynthea(TYPES, 2)]);
    await insertResources(db.knex, resources);
    deleted = new Set(resources.filter((_, i) => i % 13 === 6));
    for (const r of deleted) await markDeleted(db.knex, r);
  });

  afterAll(async () => {
    await db?.drop();
  });

  test.each(TYPES)('every reference parameter of %s matches Type/id, a plain id, :Type, absolute URLs and :missing', async (type) => {
    const live = resources.filter((r) => r.resourceType === type && !deleted.has(r));
    const codes = [...indexedParams(type).values()].filter((p) => p.def.type === 'reference').map((p) => p.def.code);
    expect(codes.length).toBeGreaterThan(0);
    let selective = 0;
    const check = async (code: string, key: string, value: string, expected: string[]): Promise<void> => {
      const actual = await searchIds(db.knex, parseSearchRequest(type, { [key]: value }, options));
      expect({ query: `${type}?${key}=${value}`, ids: actual.sort() }).toEqual({ query: `${type}?${key}=${value}`, ids: expected.sort() });
      if (expected.length > 0 && expected.length < live.length) selective++;
    };
    for (const code of codes) {
      const official = officialParameter(type, code);
      const targets = official.target?.length ? official.target : [...resourceTypes];
      const refs = new Map(live.map((r) => [r.id as string, references(officialValues(r, code))]));
      const identified = new Set(live.filter((r) => hasIdentifier(officialValues(r, code))).map((r) => r.id as string));
      const present = (id: string, rs: string[]): boolean => rs.length > 0 || identified.has(id);
      const having = (pred: (ref: string) => boolean): string[] => [...refs].filter(([, rs]) => rs.some(pred)).map(([id]) => id);
      await check(code, `${code}:missing`, 'true', [...refs].filter(([id, rs]) => !present(id, rs)).map(([id]) => id));
      await check(code, `${code}:missing`, 'false', [...refs].filter(([id, rs]) => present(id, rs)).map(([id]) => id));
      const all = [...new Set([...refs.values()].flat())].sort();
      const relative = all.filter((r) => /^[A-Z][A-Za-z]+\/[^/]+$/.test(r));
      for (const ref of [relative[0], relative[Math.floor(relative.length / 2)]].filter((r) => r !== undefined)) {
        const [refType, id] = ref.split('/');
        await check(code, code, ref, having((r) => r === ref));
        await check(code, code, id, having((r) => targets.some((t) => r === `${t}/${id}`)));
        await check(code, `${code}:${refType}`, id, having((r) => r === ref));
      }
      if (relative.length > 1) {
        const [a, b] = [relative[0], relative[relative.length - 1]];
        await check(code, code, `${a},${b}`, having((r) => r === a || r === b));
      }
      const absolute = all.find((r) => !relative.includes(r));
      if (absolute) await check(code, code, absolute.replace(/[\\,|$]/g, (c) => `\\${c}`), having((r) => r === absolute));
    }
    expect(selective).toBeGreaterThan(0);
  });

  test('the patient of an Observation can be found by id, by Patient/id and by subject:Patient', async () => {
    const observation = resources.find((r) => r.resourceType === 'Observation' && !deleted.has(r) && (r as { subject?: { reference?: string } }).subject?.reference?.startsWith('Patient/'));
    const ref = (observation as { subject: { reference: string } }).subject.reference;
    const [, id] = ref.split('/');
    for (const query of [{ patient: id }, { patient: ref }, { subject: ref }, { 'subject:Patient': id }]) {
      expect(await searchIds(db.knex, parseSearchRequest('Observation', query, options))).toContain(observation?.id);
    }
    expect(await searchIds(db.knex, parseSearchRequest('Observation', { 'subject:Group': id }, options))).not.toContain(observation?.id);
  });

  test('a :Type that is not a resource type, a mismatched Type/id, or an empty :identifier is a 400', () => {
    expect(() => parseSearchRequest('Observation', { 'patient:NotAType': 'x' }, options)).toThrow(/not supported/);
    expect(() => parseSearchRequest('Observation', { 'subject:Patient': 'Group/x' }, options)).toThrow(/cannot match/);
    expect(() => parseSearchRequest('Observation', { 'subject:identifier': '|' }, options)).toThrow(/identifier/);
  });
});
