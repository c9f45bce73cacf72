import type { CodeableConcept, Coding, ContactPoint, Identifier, Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { applySearch } from '../../server/search/build-search-sql';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import type { SearchRequest } from '../../server/search/search-request';
import { indexedParams } from '../../server/search/supported-parameters';
import { foldText, parameterValues, type TypedValue } from './independent-evaluation';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';
import {
  createResourceTable,
  createSearchTestDatabase,
  insertResources,
  markDeleted,
  searchIds,
  type SearchTestDatabase,
} from './search-test-database';

const TYPES = [
  'Patient',
  'Observation',
  'Condition',
  'Encounter',
  'AllergyIntolerance',
  'MedicationRequest',
  'Practitioner',
  'Organization',
  'Immunization',
  'Procedure',
];

/** What one value offers to token matching, per R4 search.html#token, written from the spec. */
interface TokenUnits {
  codes: { system?: string; code?: string }[];
  texts: string[];
  ofType: { typeSystem?: string; typeCode?: string; value?: string }[];
}

function units(values: TypedValue[]): TokenUnits {
  const result: TokenUnits = { codes: [], texts: [], ofType: [] };
  const coding = (c: Coding): void => {
    result.codes.push({ system: c.system || undefined, code: c.code?.trim() ? c.code : undefined });
    if (c.display) result.texts.push(c.display);
  };
  for (const { type, value } of values) {
    if (type === 'Coding') coding(value as Coding);
    else if (type === 'CodeableConcept') {
      const cc = value as CodeableConcept;
      cc.coding?.forEach(coding);
      if (cc.text) result.texts.push(cc.text);
    } else if (type === 'Identifier') {
      const id = value as Identifier;
      result.codes.push({ system: id.system || undefined, code: id.value?.trim() ? id.value : undefined });
      for (const t of id.type?.coding ?? []) {
        result.ofType.push({ typeSystem: t.system ?? '', typeCode: t.code, value: id.value });
        if (t.display) result.texts.push(t.display);
      }
      if (id.type?.text) result.texts.push(id.type.text);
    } else if (type === 'ContactPoint') {
      result.codes.push({ code: (value as ContactPoint).value });
    } else if (['string', 'boolean', 'number'].includes(typeof value)) {
      result.codes.push({ code: String(value) });
    }
  }
  result.codes = result.codes.filter((c) => c.code !== undefined || c.system !== undefined);
  return result;
}

type Query = { key: string; value: string; matches: (u: TokenUnits) => boolean };

const hasCode = (u: TokenUnits, system: string | undefined | null, code: string | undefined): boolean =>
  u.codes.some(
    (c) =>
      (code === undefined || c.code === code) &&
      (system === undefined ? c.code !== undefined : system === null ? c.system === undefined : c.system === system)
  );

const esc = (s: string): string => s.replace(/[\\,|$]/g, (c) => `\\${c}`);

/** A handful of queries per parameter, built from values that occur in the fixtures. */
function queriesFor(code: string, all: TokenUnits[]): Query[] {
  const pairs = [...new Map(all.flatMap((u) => u.codes).map((c) => [`${c.system}|${c.code}`, c])).values()].sort(
    (a, b) => `${a.system}|${a.code}`.localeCompare(`${b.system}|${b.code}`)
  );
  if (pairs.length === 0) return [];
  const picks = [...new Set([pairs[0], pairs[Math.floor(pairs.length / 2)], pairs[pairs.length - 1]])];
  const queries: Query[] = [];
  for (const p of picks) {
    if (p.code !== undefined) {
      queries.push({ key: code, value: esc(p.code), matches: (u) => hasCode(u, undefined, p.code) });
      queries.push({ key: `${code}:not`, value: esc(p.code), matches: (u) => !hasCode(u, undefined, p.code) });
      if (p.system === undefined) {
        queries.push({ key: code, value: `|${esc(p.code)}`, matches: (u) => hasCode(u, null, p.code) });
      } else {
        const s = p.system;
        queries.push({ key: code, value: `${esc(s)}|${esc(p.code)}`, matches: (u) => hasCode(u, s, p.code) });
      }
    }
    if (p.system !== undefined) {
      const s = p.system;
      queries.push({ key: code, value: `${esc(s)}|`, matches: (u) => u.codes.some((c) => c.system === s) });
    }
  }
  if (picks.length > 1 && picks[0].code !== undefined && picks[1].code !== undefined) {
    const [a, b] = [picks[0].code, picks[1].code];
    queries.push({ key: code, value: `${esc(a)},${esc(b)}`, matches: (u) => hasCode(u, undefined, a) || hasCode(u, undefined, b) });
  }
  const texts = all.flatMap((u) => u.texts).sort();
  if (texts.length > 0) {
    const text = texts[Math.floor(texts.length / 2)];
    const prefix = text.slice(0, Math.max(3, Math.ceil(text.length / 2))).toUpperCase();
    queries.push({
      key: `${code}:text`,
      value: esc(prefix),
      matches: (u) => u.texts.some((t) => foldText(t).startsWith(foldText(prefix))),
    });
  }
  const ofType = all.flatMap((u) => u.ofType).find((o) => o.typeCode && o.value);
  if (ofType) {
    const { typeSystem = '', typeCode = '', value = '' } = ofType;
    queries.push({
      key: `${code}:of-type`,
      value: `${esc(typeSystem)}|${esc(typeCode)}|${esc(value)}`,
      matches: (u) => u.ofType.some((o) => (o.typeSystem ?? '') === typeSystem && o.typeCode === typeCode && o.value === value),
    });
  }
  queries.push({ key: `${code}:missing`, value: 'true', matches: (u) => u.codes.length === 0 && u.texts.length === 0 });
  queries.push({ key: `${code}:missing`, value: 'false', matches: (u) => u.codes.length > 0 || u.texts.length > 0 });
  return queries;
}

const options = { strict: true, defaultCount: 20, maxCount: 1000 };

describe('token search over HL7 examples and Synthea', () => {
  let db: SearchTestDatabase;
  let resources: Resource[];
  let deleted: Resource[];

  beforeAll(async () => {
    db = await createSearchTestDatabase();
    for (const type of TYPES) await createResourceTable(db.knex, type);
    resources = uniqueById([...loadHl7Examples(TYPES), ...loadSynthea(TYPES, 2)]);
    await insertResources(db.knex, resources);
    // Every 7th resource is deleted: it must never match, whatever its old values were.
    deleted = resources.filter((_, i) => i % 7 === 3);
    for (const r of deleted) await markDeleted(db.knex, r);
    await db.knex.raw('ANALYZE');
  });

  afterAll(async () => {
    await db?.drop();
  });

  test.each(TYPES)('every token parameter of %s matches what its official expression holds', async (type) => {
    const deletedIds = new Set(deleted.filter((r) => r.resourceType === type).map((r) => r.id));
    const live = resources.filter((r) => r.resourceType === type && !deletedIds.has(r.id));
    const tokenCodes = [...indexedParams(type).values()].filter((p) => p.def.type === 'token').map((p) => p.def.code);
    expect(tokenCodes.length).toBeGreaterThan(0);
    let checked = 0;
    let selective = 0;
    for (const code of tokenCodes) {
      const valuesById = new Map(live.map((r) => [r.id as string, units(parameterValues(r, code))]));
      for (const q of queriesFor(code, [...valuesById.values()])) {
        const request = parseSearchRequest(type, { [q.key]: q.value }, options);
        const actual = (await searchIds(db.knex, request)).sort();
        const expected = [...valuesById].filter(([, u]) => q.matches(u)).map(([id]) => id).sort();
        expect({ query: `${type}?${q.key}=${q.value}`, ids: actual }).toEqual({ query: `${type}?${q.key}=${q.value}`, ids: expected });
        checked++;
        if (expected.length > 0 && expected.length < live.length) selective++;
      }
    }
    expect(checked).toBeGreaterThan(tokenCodes.length);
    // The comparison is only worth something if queries select some rows but not all.
    expect(selective).toBeGreaterThan(tokenCodes.length / 2);
  });

  test('repeating a parameter ANDs the values and commas OR them', async () => {
    const live = resources.filter((r) => r.resourceType === 'Observation' && !deleted.includes(r));
    const codes = live.map((r) => units(parameterValues(r, 'code')));
    const categories = live.map((r) => units(parameterValues(r, 'category')));
    // A code and a category that occur together on some Observation.
    const i = live.findIndex((_, k) => codes[k].codes.some((c) => c.system && c.code) && categories[k].codes.some((c) => c.code));
    const code = codes[i].codes.find((c) => c.system && c.code) as { system: string; code: string };
    const category = categories[i].codes.find((c) => c.code)?.code as string;
    const request = parseSearchRequest(
      'Observation',
      { code: `${esc(code.system)}|${esc(code.code)}`, category: [esc(category), `${esc(category)},nonexistent-code`] },
      options
    );
    const expected = live
      .filter((_, k) => hasCode(codes[k], code.system, code.code) && hasCode(categories[k], undefined, category))
      .map((r) => r.id)
      .sort();
    expect(expected.length).toBeGreaterThan(0);
    expect((await searchIds(db.knex, request)).sort()).toEqual(expected);
    const narrower = parseSearchRequest('Observation', { code: `${esc(code.system)}|${esc(code.code)}`, category: 'nonexistent-code' }, options);
    expect(await searchIds(db.knex, narrower)).toEqual([]);
  });

  test('escaped commas, pipes and backslashes match literally, and :text ignores case and accents', async () => {
    const odd: Resource = {
      resourceType: 'Observation',
      id: 'odd-token',
      status: 'final',
      code: { coding: [{ system: 'http://x|y', code: 'a,b|c\\d', display: 'Éclair Über' }], text: 'Ünusual' },
    };
    await insertResources(db.knex, [odd]);
    const find = async (query: Record<string, string>): Promise<string[]> =>
      searchIds(db.knex, parseSearchRequest('Observation', query, options));
    expect(await find({ code: 'a\\,b\\|c\\\\d' })).toEqual(['odd-token']);
    expect(await find({ code: 'http://x\\|y|a\\,b\\|c\\\\d' })).toEqual(['odd-token']);
    expect(await find({ code: 'http://x\\|y|' })).toEqual(['odd-token']);
    expect(await find({ code: 'http://x|y|a,b|c\\\\d' })).toEqual([]);
    expect(await find({ code: 'a' })).not.toContain('odd-token');
    expect(await find({ 'code:text': 'eclair ub' })).toEqual(['odd-token']);
    expect(await find({ 'code:text': 'UNUS' })).toEqual(['odd-token']);
    expect(await find({ 'code:text': 'clair' })).toEqual([]);
    await markDeleted(db.knex, odd);
    expect(await find({ code: 'a\\,b\\|c\\\\d' })).toEqual([]);
  });

  test('a token search on a table of thousands of rows uses the GIN index, not a sequential scan', async () => {
    expect(resources.filter((r) => r.resourceType === 'Observation').length).toBeGreaterThan(1000);
    const plan = await explain(db, 'Observation', parseSearchRequest('Observation', { code: 'http://loinc.org|8867-4' }, options));
    expect(plan).not.toContain('Seq Scan');
    expect(plan).toContain('Observation___code_idx');
  });

  test('an identifier search can use the GIN index (on a small table, with sequential scans disabled)', async () => {
    const patient = resources.find(
      (r): r is Resource & { identifier: Identifier[] } =>
        r.resourceType === 'Patient' && !deleted.includes(r) && Boolean((r as { identifier?: Identifier[] }).identifier?.[0]?.system)
    );
    const id = patient?.identifier[0] as Identifier;
    const request = parseSearchRequest('Patient', { identifier: `${esc(id.system ?? '')}|${esc(id.value ?? '')}` }, options);
    expect(await searchIds(db.knex, request)).toContain(patient?.id);
    const plan = await explain(db, 'Patient', request, true);
    expect(plan).not.toContain('Seq Scan');
    expect(plan).toContain('Patient___identifier_idx');
  });
});

async function explain(db: SearchTestDatabase, type: string, request: SearchRequest, noSeqScan = false): Promise<string> {
  const native = applySearch(db.knex(type).select('id'), request).limit(20).toSQL().toNative();
  return db.knex.transaction(async (trx) => {
    if (noSeqScan) await trx.raw('SET LOCAL enable_seqscan = off');
    const result = await trx.raw(`EXPLAIN (FORMAT JSON) ${native.sql.replace(/\$\d+/g, '?')}`, native.bindings as Knex.RawBinding[]);
    return JSON.stringify(result.rows[0]['QUERY PLAN']);
  });
}
