import type { Resource } from '@medplum/fhirtypes';
import { setContentSearch } from '../../server/search/full-text-settings';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { indexedParam } from '../../server/search/supported-parameters';
import { fhirRequest } from '../support/fhir-client';
import { startServerOn, type TestServer } from '../support/test-server';
import { copyTemplateDatabase } from '../support/template-database';
import { getSearch, sortedKeys } from './http-search';
import { foldText } from './independent-evaluation';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';
import { createResourceTable, createSearchTestDatabase, insertResources, markDeleted, searchIds, type SearchTestDatabase } from './search-test-database';

const TYPES = ['Patient', 'Condition', 'Observation', 'Procedure', 'Practitioner', 'Organization', 'MedicationRequest'];
const options = { strict: true, defaultCount: 20, maxCount: 5000 };

/**
 * The words of a whole resource as `_content` reads them, worked out here without the
 * server's code: every string value but references, URLs/URNs, ids, base64 data, dates,
 * content types, languages and meta; the narrative's text without its markup. Each
 * value is a list of its own (a phrase does not run from one value into the next).
 */
function contentValues(resource: Resource): string[][] {
  const values: string[][] = [];
  const skipped = new Set(['resourceType', 'id', 'meta', 'reference', 'url', 'system', 'profile', 'fullUrl', 'data', 'contentType', 'language']);
  const words = (text: string): string[] => foldText(text).split(/[^\p{L}\p{N}]+/u).filter((w) => w !== '');
  const walk = (v: unknown, key: string): void => {
    if (typeof v === 'string') {
      if (key === 'div') values.push(words(v.replace(/<!--[\s\S]*?-->/g, ' ').replace(/<[^>]*>/g, ' ').replace(/&[a-z]+;|&#\w+;/gi, ' ')));
      else if (!/^\d{4}(-\d\d(-\d\d(T\S*)?)?)?$/.test(v) && !/^(https?:\/\/|urn:)\S*$/i.test(v)) values.push(words(v));
    } else if (Array.isArray(v)) v.forEach((item) => walk(item, key));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (!skipped.has(k)) walk(x, k);
  };
  walk(resource, '');
  return values;
}

describe('_content with SEARCH_CONTENT on: full-text search over whole HL7 examples and Synthea resources', () => {
  let db: SearchTestDatabase;
  let live: Resource[];

  beforeAll(async () => {
    setContentSearch(true);
    db = await createSearchTestDatabase();
    for (const type of TYPES) await createResourceTable(db.knex, type);
    const resources = uniqueById([...loadHl7Examples(TYPES), ...loadSynthea(TYPES, 1)]);
    await insertResources(db.knex, resources);
    const deleted = new Set(resources.filter((_, i) => i % 11 === 5));
    for (const r of deleted) await markDeleted(db.knex, r);
    live = resources.filter((r) => !deleted.has(r));
  });

  afterAll(async () => {
    await db?.drop();
    setContentSearch(false);
  });

  test.each(TYPES)('%s: words, prefixes, AND, OR, NOT and phrases match what the resources hold', async (type) => {
    const byId = new Map(live.filter((r) => r.resourceType === type).map((r) => [r.id as string, contentValues(r)]));
    const check = async (value: string, match: (values: string[][]) => boolean): Promise<number> => {
      const actual = (await searchIds(db.knex, parseSearchRequest(type, { _content: value }, options))).sort();
      const expected = [...byId].filter(([, values]) => match(values)).map(([id]) => id).sort();
      expect({ value, ids: actual }).toEqual({ value, ids: expected });
      return expected.length;
    };
    const has = (values: string[][], word: string): boolean => values.some((v) => v.includes(word));
    const vocabulary = [...new Set([...byId.values()].flat(2))].sort();
    expect(vocabulary.length).toBeGreaterThan(10);
    let found = 0;
    for (const word of [vocabulary[0], vocabulary[Math.floor(vocabulary.length / 3)], vocabulary[Math.floor((2 * vocabulary.length) / 3)], vocabulary[vocabulary.length - 1]]) {
      found += await check(word, (values) => has(values, word));
      const prefix = word.slice(0, Math.max(2, Math.ceil(word.length / 2)));
      await check(`${prefix}*`, (values) => values.some((v) => v.some((w) => w.startsWith(prefix))));
    }
    expect(found).toBeGreaterThan(0);
    const [a, b] = [vocabulary[1], vocabulary[vocabulary.length - 2]];
    await check(`${a} ${b}`, (values) => has(values, a) && has(values, b));
    await check(`${a} or ${b}`, (values) => has(values, a) || has(values, b));
    await check(`${a} -${b}`, (values) => has(values, a) && !has(values, b));

    // A phrase inside one value matches; the last word of one value and the first of the next do not make one.
    const resource = [...byId.values()].find((values) => values.some((v) => v.length >= 2) && values.length >= 2) as string[][];
    const within = (resource.find((v) => v.length >= 2) as string[]).slice(0, 2);
    const inPhrase = (values: string[][], p: string[]): boolean => values.some((v) => v.some((_, i) => p.every((w, k) => v[i + k] === w)));
    expect(await check(`"${within.join(' ')}"`, (values) => inPhrase(values, within))).toBeGreaterThan(0);
    const boundary = resource.map((v, i) => [v[v.length - 1], resource[i + 1]?.[0]]).find(([x, y]) => x && y) as string[];
    await check(`"${boundary.join(' ')}"`, (values) => inPhrase(values, boundary));
  });

  test('a resource whose narrative alone passes PostgreSQL tsvector limits is stored and found by its words', async () => {
    const long = Array.from({ length: 300_000 }, (_, i) => `w${i % 40_000}x word`).join(' ');
    const huge = { resourceType: 'Condition', id: 'huge', subject: { reference: 'Patient/x' }, code: { text: 'hugecode' }, text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${long}</div>` } } as unknown as Resource;
    await insertResources(db.knex, [huge]);
    for (const word of ['w123x', 'hugecode']) {
      expect(await searchIds(db.knex, parseSearchRequest('Condition', { _content: word }, options))).toEqual(['huge']);
    }
  });

  test('references, URLs, ids, dates and meta are not words of the content; the narrative and contained resources are', async () => {
    const observation = {
      resourceType: 'Observation',
      id: 'zzqid',
      meta: { tag: [{ code: 'zzqtag' }] },
      status: 'final',
      code: { coding: [{ system: 'http://zzqurl.example.org', code: 'zzqcode' }], text: 'zzqword' },
      subject: { reference: 'Patient/zzqref' },
      effectiveDateTime: '2031-03-04',
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><span title="zzqattr">zzqnarrative</span></div>' },
      contained: [{ resourceType: 'Device', id: 'd', deviceName: [{ name: 'zzqdevice', type: 'user-friendly-name' }] }],
    } as unknown as Resource;
    await insertResources(db.knex, [observation]);
    const ids = async (value: string): Promise<string[]> => searchIds(db.knex, parseSearchRequest('Observation', { _content: value }, options));
    for (const word of ['zzqword', 'zzqcode', 'zzqnarrative', 'zzqdevice']) expect({ word, ids: await ids(word) }).toEqual({ word, ids: ['zzqid'] });
    for (const word of ['zzqurl', 'zzqref', 'zzqid', 'zzqtag', 'zzqattr', '2031']) expect({ word, ids: await ids(word) }).toEqual({ word, ids: [] });
  });
});

test('SEARCH_CONTENT decides whether _content exists; turning it off drops the words, turning it on fills them for what is stored', async () => {
  const database = await copyTemplateDatabase();
  let running: { stop(): Promise<void> } | undefined;
  const start = async (env: Record<string, string>): Promise<TestServer> => {
    const started = await startServerOn(database.url, env);
    running = started.server;
    return { base: started.base } as TestServer;
  };
  const stop = async (): Promise<void> => {
    await running?.stop();
    running = undefined;
  };
  const search = async (server: TestServer, q: string): Promise<string[]> => sortedKeys((await getSearch(server, `Condition?_content=${q}`)).matches);
  try {
    let server = await start({ SEARCH_CONTENT: 'true' });
    const metadata = await fhirRequest('GET', `${server.base}/metadata`);
    const conditionParams = (metadata.body as { rest: { resource: { type: string; searchParam?: { name: string }[] }[] }[] }).rest[0].resource.find((r) => r.type === 'Condition')?.searchParam;
    expect(conditionParams?.map((p) => p.name)).toEqual(expect.arrayContaining(['_content', '_text']));
    const condition = { resourceType: 'Condition', id: 'c1', subject: { reference: 'Patient/p1' }, code: { text: 'Ischaemic heart disease' }, note: [{ text: 'Follows a stent' }] };
    expect((await fhirRequest('PUT', `${server.base}/Condition/c1`, { body: condition })).status).toBe(201);
    expect(await search(server, 'STENT')).toEqual(['Condition/c1']);
    expect(await search(server, '%22heart%20disease%22')).toEqual(['Condition/c1']);
    await stop();

    // Off: no _content, no column; the parameter is ignored with a warning as any unknown one.
    server = await start({});
    const off = await getSearch(server, 'Condition?_content=nothingmatches');
    expect(off.status).toBe(200);
    expect(off.outcomes).toHaveLength(1);
    expect(indexedParam('Condition', '_content')).toBeUndefined();
    const second = { ...condition, id: 'c2', note: [{ text: 'Written while content search was off' }] };
    expect((await fhirRequest('PUT', `${server.base}/Condition/c2`, { body: second })).status).toBe(201);
    await stop();

    // On again: every stored resource is searchable, including the one written while it was off.
    server = await start({ SEARCH_CONTENT: 'true' });
    expect(await search(server, 'stent')).toEqual(['Condition/c1']);
    expect(await search(server, 'written')).toEqual(['Condition/c2']);
    expect(await search(server, 'ischaemic')).toEqual(['Condition/c1', 'Condition/c2']);
  } finally {
    await stop().catch(() => undefined);
    setContentSearch(false);
    await database.drop();
  }
});
