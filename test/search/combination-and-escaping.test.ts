import type { Resource } from '@medplum/fhirtypes';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { foldText, officialValues } from './independent-evaluation';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';
import { createResourceTable, createSearchTestDatabase, insertResources, markDeleted, searchIds, type SearchTestDatabase } from './search-test-database';

/**
 * R4 search.html#combining and #escaping: commas OR values, repeating a parameter ANDs
 * it, different parameters AND, whatever their types; `\,` `\|` `\$` `\\` are literal
 * characters. Expected ids come from the official expressions over the HL7 examples and
 * Synthea, plus a few Patients whose names hold the reserved characters.
 */
const TYPES = ['Patient', 'Observation'];
const options = { strict: true, defaultCount: 20, maxCount: 100000 };

const ODD: Resource[] = [
  { resourceType: 'Patient', id: 'comma', name: [{ family: "O,Brien", given: ['Ann'] }], gender: 'female', birthDate: '1970-05-01' },
  { resourceType: 'Patient', id: 'pipe', name: [{ family: 'Pipe|Line', given: ['Bob'] }], gender: 'male', birthDate: '1971' },
  { resourceType: 'Patient', id: 'dollar', name: [{ family: 'Cash$Flow', given: ['Cy'] }], gender: 'other', birthDate: '1969-12' },
  { resourceType: 'Patient', id: 'backslash', name: [{ family: 'Back\\Slash', given: ['Di'] }], gender: 'unknown' },
  { resourceType: 'Patient', id: 'o-only', name: [{ family: 'Obrien', given: ['Ed'] }], gender: 'male', birthDate: '1980-01-01' },
  { resourceType: 'Patient', id: 'brien', name: [{ family: 'Brien', given: ['Fay'] }], gender: 'female', birthDate: '1990-01-01' },
];

/** Every string part a Patient offers to `name` / `family` / `given` (R4: each HumanName part). */
function parts(r: Resource, code: string): string[] {
  return officialValues(r, code).flatMap((v) => {
    if (typeof v === 'string') return [v];
    const n = v as Record<string, unknown>;
    return ['family', 'given', 'prefix', 'suffix', 'text'].flatMap((k) => [n[k]].flat()).filter((p): p is string => typeof p === 'string');
  });
}

const startsWith = (r: Resource, code: string, prefix: string): boolean => parts(r, code).some((p) => foldText(p).startsWith(foldText(prefix)));
const gender = (r: Resource): unknown[] => officialValues(r, 'gender');

/** [start, end) of a birthDate (year, month or day precision). */
function birthRange(r: Resource): [number, number] | undefined {
  const [text] = officialValues(r, 'birthdate') as string[];
  if (!text) return undefined;
  const [y, m, d] = text.split('-').map(Number);
  const start = Date.UTC(y, (m ?? 1) - 1, d ?? 1);
  const end = d ? Date.UTC(y, m - 1, d + 1) : m ? Date.UTC(y, m, 1) : Date.UTC(y + 1, 0, 1);
  return [start, end];
}

describe('OR with commas, AND by repeating, escaping', () => {
  let db: SearchTestDatabase;
  let patients: Resource[];

  beforeAll(async () => {
    db = await createSearchTestDatabase();
    for (const type of TYPES) await createResourceTable(db.knex, type);
    const resources = uniqueById([...loadHl7Examples(TYPES), ...loadSynthea(TYPES, 8), ...ODD]);
    await insertResources(db.knex, resources);
    const deleted = new Set(resources.filter((r, i) => i % 9 === 5 && !ODD.includes(r)));
    for (const r of deleted) await markDeleted(db.knex, r);
    patients = resources.filter((r) => r.resourceType === 'Patient' && !deleted.has(r));
  });

  afterAll(async () => {
    await db?.drop();
  });

  const find = async (query: Record<string, string | string[]>): Promise<string[]> =>
    (await searchIds(db.knex, parseSearchRequest('Patient', query, options))).sort();
  const expect_ = (match: (r: Resource) => boolean): string[] => patients.filter(match).map((r) => r.id as string).sort();

  test('\\, \\| \\$ and \\\\ in a string value are the literal characters; an unescaped comma is an OR', async () => {
    expect(await find({ family: 'O\\,Brien' })).toEqual(expect_((r) => startsWith(r, 'family', 'O,Brien')));
    expect(await find({ family: 'O\\,Brien' })).toEqual(['comma']);
    expect(await find({ family: 'O,Brien' })).toEqual(expect_((r) => startsWith(r, 'family', 'O') || startsWith(r, 'family', 'Brien')));
    expect(await find({ family: 'O,Brien' })).toEqual(expect.arrayContaining(['comma', 'o-only', 'brien']));
    expect(await find({ family: 'pipe\\|l' })).toEqual(['pipe']);
    expect(await find({ family: 'cash\\$flow' })).toEqual(['dollar']);
    expect(await find({ 'family:exact': 'Cash$Flow' })).toEqual(['dollar']);
    expect(await find({ 'family:exact': 'Back\\\\Slash' })).toEqual(['backslash']);
    expect(await find({ 'family:contains': 'k\\\\s' })).toEqual(['backslash']);
    // Unescaped, ',b' is an empty alternative (constrains nothing) OR 'b'.
    expect(await find({ 'family:contains': ',b' })).toEqual(expect_((r) => parts(r, 'family').some((p) => foldText(p).includes('b'))));
    expect(await find({ 'family:contains': '\\,b' })).toEqual(['comma']);
  });

  test('a trailing backslash or an unknown escape is kept literally rather than widening the search', async () => {
    expect(await find({ family: 'Back\\' })).toEqual(expect_((r) => startsWith(r, 'family', 'Back\\')));
    expect(await find({ family: 'Back\\' })).not.toContain('o-only');
  });

  test('commas OR and repetition ANDs within one string parameter, over real names', async () => {
    const givens = [...new Set(patients.flatMap((p) => parts(p, 'given')))].sort();
    const [a, b] = [givens[3].slice(0, 2), givens[givens.length - 4].slice(0, 2)];
    expect(await find({ given: `${a},${b}` })).toEqual(expect_((r) => startsWith(r, 'given', a) || startsWith(r, 'given', b)));
    expect(await find({ name: [a, b] })).toEqual(expect_((r) => startsWith(r, 'name', a) && startsWith(r, 'name', b)));
    expect((await find({ given: `${a},${b}` })).length).toBeGreaterThan(1);
  });

  test('parameters of different types AND together, each ORing its own comma-separated values', async () => {
    const families = [...new Set(patients.flatMap((p) => parts(p, 'family')))].sort();
    const letters = [...new Set(families.map((f) => f[0]))].slice(0, 6);
    const year = (r: Resource): number | undefined => birthRange(r)?.[0];
    const cases: [Record<string, string | string[]>, (r: Resource) => boolean][] = [
      [{ gender: 'female,other', family: letters.join(',') }, (r) => ['female', 'other'].some((g) => gender(r).includes(g)) && letters.some((l) => startsWith(r, 'family', l))],
      [
        { gender: 'male', birthdate: ['ge1950', 'lt1990'] },
        (r) => gender(r).includes('male') && (year(r) ?? -Infinity) >= Date.UTC(1950, 0, 1) && (birthRange(r)?.[1] ?? Infinity) <= Date.UTC(1990, 0, 1),
      ],
      [
        { birthdate: 'lt1940,ge2000', 'name:contains': 'a' },
        (r) => {
          const range = birthRange(r);
          return range !== undefined && (range[0] < Date.UTC(1940, 0, 1) || range[1] > Date.UTC(2000, 0, 1)) && parts(r, 'name').some((p) => foldText(p).includes('a'));
        },
      ],
      [{ gender: ['female', 'male'] }, () => false],
      [{ 'gender:not': 'male,female', 'birthdate:missing': 'false' }, (r) => !gender(r).includes('male') && !gender(r).includes('female') && birthRange(r) !== undefined],
    ];
    let selective = 0;
    for (const [query, match] of cases) {
      const expected = expect_(match);
      expect({ query, ids: await find(query) }).toEqual({ query, ids: expected });
      if (expected.length > 0 && expected.length < patients.length) selective++;
    }
    expect(selective).toBeGreaterThan(2);
  });

  test('an escaped comma in a token or reference value is part of the value, not an OR', async () => {
    expect(await find({ gender: 'female\\,male' })).toEqual([]);
    expect(await find({ 'general-practitioner': 'Practitioner/a\\,b' })).toEqual([]);
    const gp = patients.flatMap((p) => officialValues(p, 'general-practitioner') as { reference?: string }[]).find((r) => r.reference)?.reference as string;
    const withGp = expect_((r) => (officialValues(r, 'general-practitioner') as { reference?: string }[]).some((x) => x.reference === gp));
    expect(withGp.length).toBeGreaterThan(0);
    expect(await find({ 'general-practitioner': `${gp},Practitioner/none` })).toEqual(withGp);
    expect(await find({ 'general-practitioner': `${gp}\\,Practitioner/none` })).toEqual([]);
  });
});
