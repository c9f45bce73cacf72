import type { Coding, Resource } from '@medplum/fhirtypes';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { foldText, officialValues } from './independent-evaluation';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';
import { searchIds, type SearchTestDatabase, storeSearchFixture } from './search-test-database';

/**
 * The parameters every resource has (R4 search.html#all): _tag and _security (tokens over
 * Coding), _profile and _source (uri), _id. The fixtures keep the profiles they were
 * published with (Synthea's US Core, the HL7 examples' own); tags, security labels and
 * sources are added here by a rule of the resource's position, so each value matches some
 * resources but not all. Expected ids come from the official expressions, evaluated by
 * fhirpath.js over the resources as loaded.
 */
const TYPES = ['Patient', 'Observation', 'Encounter', 'Condition', 'ValueSet', 'CodeSystem'];
const options = { strict: true, defaultCount: 20, maxCount: 1000 };
const TAGS = 'http://example.org/fhir/tags';
const CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const esc = (s: string): string => s.replace(/[\\,|$]/g, (c) => `\\${c}`);

/** Adds meta.tag / meta.security / meta.source by the resource's position (a rule of the test's own). */
function labelled(resource: Resource, i: number): Resource {
  const meta = { ...resource.meta };
  const tag: Coding[] = [...(meta.tag ?? [])];
  if (i % 3 === 0) tag.push({ system: TAGS, code: `batch-${i % 5}`, display: `Batch Number ${i % 5}` });
  if (i % 7 === 1) tag.push({ code: 'no-system' });
  if (i % 11 === 2) tag.push({ system: 'http://example.org/fhir/other-tags', code: 'batch-1' });
  if (tag.length > 0) meta.tag = tag;
  const security: Coding[] = [...(meta.security ?? [])];
  if (i % 4 === 1) security.push({ system: CONFIDENTIALITY, code: i % 8 === 1 ? 'R' : 'N', display: i % 8 === 1 ? 'restricted' : 'normal' });
  if (security.length > 0) meta.security = security;
  if (i % 5 === 0) meta.source = `http://feeds.example.org/feed-${i % 2}/${resource.resourceType}#${resource.id}`;
  return Object.keys(meta).length > 0 ? ({ ...resource, meta } as Resource) : resource;
}

const codings = (r: Resource, code: string): Coding[] => officialValues(r, code) as Coding[];
const uris = (r: Resource, code: string): string[] => officialValues(r, code).filter((v): v is string => typeof v === 'string');

describe('_tag, _security, _profile, _source and _id', () => {
  let db: SearchTestDatabase;
  let live: Resource[];

  beforeAll(async () => {
    const resources = uniqueById([...loadHl7Examples(TYPES), ...loadSynthea(TYPES, 1)]).map(labelled);
    ({ db, live } = await storeSearchFixture(TYPES, resources, (_, i) => i % 13 === 9));
  });

  afterAll(async () => {
    await db?.drop();
  });

  /** Compares the search with the oracle over the live resources of `type`; true when it selects some but not all. */
  async function check(type: string, key: string, value: string, match: (r: Resource) => boolean): Promise<boolean> {
    const ofType = live.filter((r) => r.resourceType === type);
    const expected = ofType.filter(match).map((r) => r.id as string).sort();
    const actual = (await searchIds(db.knex, parseSearchRequest(type, { [key]: value }, { ...options, maxCount: 100000 }))).sort();
    expect({ query: `${type}?${key}=${value}`, ids: actual }).toEqual({ query: `${type}?${key}=${value}`, ids: expected });
    return expected.length > 0 && expected.length < ofType.length;
  }

  test.each(['_tag', '_security'])('%s matches code, system|code, |code, system|, :not, :text and :missing', async (code) => {
    let selective = 0;
    for (const type of TYPES) {
      const all = live.filter((r) => r.resourceType === type).flatMap((r) => codings(r, code));
      const distinct = [...new Map(all.map((c) => [`${c.system ?? ''}|${c.code}`, c])).values()];
      const has = (r: Resource, ok: (c: Coding) => boolean): boolean => codings(r, code).some(ok);
      for (const c of distinct) {
        const value = esc(c.code as string);
        if (await check(type, code, value, (r) => has(r, (x) => x.code === c.code))) selective++;
        await check(type, `${code}:not`, value, (r) => !has(r, (x) => x.code === c.code));
        if (c.system) {
          await check(type, code, `${esc(c.system)}|${value}`, (r) => has(r, (x) => x.system === c.system && x.code === c.code));
          await check(type, code, `${esc(c.system)}|`, (r) => has(r, (x) => x.system === c.system));
        } else {
          await check(type, code, `|${value}`, (r) => has(r, (x) => !x.system && x.code === c.code));
        }
        if (c.display) {
          const prefix = c.display.slice(0, 4).toUpperCase();
          await check(type, `${code}:text`, esc(prefix), (r) => has(r, (x) => foldText(x.display ?? '').startsWith(foldText(prefix))));
        }
      }
      await check(type, `${code}:missing`, 'true', (r) => codings(r, code).length === 0);
      await check(type, `${code}:missing`, 'false', (r) => codings(r, code).length > 0);
    }
    expect(selective).toBeGreaterThan(TYPES.length / 2);
  });

  test('_tag ORs comma-separated codes, ANDs repeated ones, and a code under another system does not match system|code', async () => {
    const type = 'Observation';
    const hasTag = (r: Resource, system: string | undefined, c: string): boolean => codings(r, '_tag').some((x) => x.code === c && (system === undefined || x.system === system));
    expect(await check(type, '_tag', 'batch-1,no-system', (r) => hasTag(r, undefined, 'batch-1') || hasTag(r, undefined, 'no-system'))).toBe(true);
    expect(await check(type, '_tag', `${TAGS}|batch-1`, (r) => hasTag(r, TAGS, 'batch-1'))).toBe(true);
    const ofType = live.filter((r) => r.resourceType === type);
    const both = ofType.filter((r) => hasTag(r, TAGS, 'batch-0') && codings(r, '_security').some((s) => s.code === 'R'));
    const actual = await searchIds(db.knex, parseSearchRequest(type, { _tag: `${TAGS}|batch-0`, _security: `${CONFIDENTIALITY}|R`, _count: '1000' }, options));
    expect(actual.sort()).toEqual(both.map((r) => r.id).sort());
    const repeated = ofType.filter((r) => hasTag(r, undefined, 'batch-0') && hasTag(r, undefined, 'no-system'));
    const and = await searchIds(db.knex, parseSearchRequest(type, { _tag: ['batch-0', 'no-system'], _count: '1000' }, options));
    expect(and.sort()).toEqual(repeated.map((r) => r.id).sort());
  });

  test.each(['_profile', '_source'])('%s matches a value exactly, :below its base, :above a longer URL, and :missing', async (code) => {
    let selective = 0;
    for (const type of TYPES) {
      const ofType = live.filter((r) => r.resourceType === type);
      const values = [...new Set(ofType.flatMap((r) => uris(r, code)))].sort();
      for (const v of values.slice(0, 6)) {
        const bare = v.split(/[|#]/)[0];
        const base = bare.replace(/\/[^/]*$/, '');
        if (await check(type, code, esc(v), (r) => uris(r, code).includes(v))) selective++;
        // :below a path keeps the stored values at that path or under it (a fragment or version is not a path).
        await check(type, `${code}:below`, esc(base), (r) => uris(r, code).some((u) => u.split(/[|#]/)[0] === base || u.split(/[|#]/)[0].startsWith(`${base}/`)));
        // :above a longer URL finds the stored values it lies under.
        await check(type, `${code}:above`, esc(`${bare}/sub/path`), (r) => uris(r, code).some((u) => !/[|#]/.test(u) && `${bare}/sub/path`.startsWith(`${u}/`)));
      }
      await check(type, `${code}:missing`, 'true', (r) => uris(r, code).length === 0);
      await check(type, `${code}:missing`, 'false', (r) => uris(r, code).length > 0);
    }
    expect(selective).toBeGreaterThan(0);
  });

  test('_id and _id:not match the listed ids of each type, and nothing of another type', async () => {
    for (const type of TYPES) {
      const ofType = live.filter((r) => r.resourceType === type);
      const picks = [ofType[0], ofType[Math.floor(ofType.length / 2)]].map((r) => r.id as string);
      const elsewhere = live.find((r) => r.resourceType !== type)?.id as string;
      await check(type, '_id', [...picks, elsewhere].join(','), (r) => picks.includes(r.id as string));
      await check(type, '_id:not', picks.join(','), (r) => !picks.includes(r.id as string));
    }
  });
});
