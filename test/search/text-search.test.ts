import type { Resource } from '@medplum/fhirtypes';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { indexedParam } from '../../server/search/supported-parameters';
import { narrativeText, textWords } from '../../server/search/text-search-lexemes';
import { textQuery } from '../../server/search/text-search-query';
import { createKnex } from '../../server/storage/database';
import { prepareSchema } from '../../server/storage/prepare-schema';
import { copyTemplateDatabase } from '../support/template-database';
import { foldText } from './independent-evaluation';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';
import { createResourceTable, createSearchTestDatabase, insertResources, markDeleted, searchIds, type SearchTestDatabase } from './search-test-database';

const TYPES = ['Patient', 'Condition', 'Observation', 'Procedure', 'Practitioner', 'Organization', 'AllergyIntolerance', 'MedicationRequest', 'Encounter'];
const options = { strict: true, defaultCount: 20, maxCount: 5000 };

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/**
 * The words a reader sees in a narrative, worked out here without the server's code: the
 * markup removed, character references decoded, case and accents folded, split at
 * anything that is not a letter or a digit.
 */
function narrativeWords(resource: Resource): string[] {
  const div = (resource as { text?: { div?: string } }).text?.div;
  if (typeof div !== 'string') return [];
  const text = div
    .split(/<[^>]*>/)
    .join(' ')
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#([0-9]+);/g, (_, d: string) => String.fromCodePoint(parseInt(d, 10)))
    .replace(/&([a-z]+);/gi, (_, n: string) => NAMED[n] ?? ' ');
  return foldText(text)
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w !== '');
}

const hasPhrase = (words: string[], phrase: string[]): boolean =>
  words.some((_, i) => phrase.every((p, k) => words[i + k] === p));

describe('_text: full-text search over the narrative of HL7 examples and Synthea', () => {
  let db: SearchTestDatabase;
  let live: Resource[];

  beforeAll(async () => {
    db = await createSearchTestDatabase();
    for (const type of TYPES) await createResourceTable(db.knex, type);
    const resources = uniqueById([...loadHl7Examples(TYPES), ...loadSynthea(TYPES, 1)]);
    await insertResources(db.knex, resources);
    const deleted = new Set(resources.filter((_, i) => i % 9 === 4));
    for (const r of deleted) await markDeleted(db.knex, r);
    live = resources.filter((r) => !deleted.has(r));
  });

  afterAll(async () => {
    await db?.drop();
  });

  test.each(TYPES)('%s: words, prefixes, AND, OR, NOT, phrases and :missing match what the narratives say', async (type) => {
    const byId = new Map(live.filter((r) => r.resourceType === type).map((r) => [r.id as string, narrativeWords(r)]));
    const withText = [...byId.values()].filter((w) => w.length > 0);
    expect(withText.length).toBeGreaterThan(1);
    const check = async (query: Record<string, string | string[]>, match: (words: string[]) => boolean): Promise<number> => {
      const actual = (await searchIds(db.knex, parseSearchRequest(type, query, options))).sort();
      const expected = [...byId].filter(([, words]) => match(words)).map(([id]) => id).sort();
      expect({ query, ids: actual }).toEqual({ query, ids: expected });
      return expected.length;
    };
    await check({ '_text:missing': 'true' }, (w) => w.length === 0);
    await check({ '_text:missing': 'false' }, (w) => w.length > 0);

    // Words from the start, middle and end of the type's vocabulary, and a word that is in no narrative.
    const vocabulary = [...new Set(withText.flat())].sort();
    const picks = [vocabulary[0], vocabulary[Math.floor(vocabulary.length / 2)], vocabulary[vocabulary.length - 1]];
    let found = 0;
    for (const word of picks) {
      found += await check({ _text: word.toUpperCase() }, (w) => w.includes(word));
      const prefix = word.slice(0, Math.max(1, Math.ceil(word.length / 2)));
      await check({ _text: `${prefix}*` }, (w) => w.some((x) => x.startsWith(prefix)));
    }
    expect(found).toBeGreaterThan(0);
    await check({ _text: 'qqzzxxnotaword' }, () => false);

    // Two words of one narrative, and two of different narratives.
    const first = withText[0];
    const last = withText[withText.length - 1];
    const [a, b] = [first[0], last[last.length - 1]];
    await check({ _text: `${a} ${b}` }, (w) => w.includes(a) && w.includes(b));
    await check({ _text: `${a} AND ${b}` }, (w) => w.includes(a) && w.includes(b));
    await check({ _text: [a, b] }, (w) => w.includes(a) && w.includes(b));
    await check({ _text: `${a} or ${b}` }, (w) => w.includes(a) || w.includes(b));
    await check({ _text: `${a},${b}` }, (w) => w.includes(a) || w.includes(b));
    await check({ _text: `${a} -${b}` }, (w) => w.includes(a) && !w.includes(b));
    await check({ _text: `${a} NOT ${b}` }, (w) => w.includes(a) && !w.includes(b));
    await check({ _text: `(${a} or ${b}) and ${first[1] ?? a}` }, (w) => (w.includes(a) || w.includes(b)) && w.includes(first[1] ?? a));

    // A phrase is those words in that order; the same words apart or reversed are not it.
    const longest = withText.reduce((x, y) => (y.length > x.length ? y : x));
    const phrase = longest.slice(1, 3);
    expect(await check({ _text: `"${phrase.join(' ')}"` }, (w) => hasPhrase(w, phrase))).toBeGreaterThan(0);
    await check({ _text: `"${[...phrase].reverse().join(' ')}"` }, (w) => hasPhrase(w, [...phrase].reverse()));
  });

  test('case, accents, punctuation and markup do not matter; character references are text', async () => {
    const resources: Resource[] = [
      {
        resourceType: 'Condition',
        id: 'accented',
        subject: { reference: 'Patient/x' },
        text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><p>Schädel-<b>Hirn</b>-Trauma, Z&#252;rich &amp; Genève</p><!-- hidden --></div>' },
      },
    ];
    await insertResources(db.knex, resources);
    const find = async (value: string): Promise<string[]> => searchIds(db.knex, parseSearchRequest('Condition', { _text: value }, options));
    for (const value of ['schadel', 'SCHÄDEL hirn', '"schädel hirn trauma"', 'zurich', 'genEVE', 'geneve zürich', 'trau*']) {
      expect({ value, ids: await find(value) }).toEqual({ value, ids: ['accented'] });
    }
    for (const value of ['hidden', 'amp', 'xmlns', 'p', 'div', '"hirn schadel"']) {
      expect({ value, ids: await find(value) }).toEqual({ value, ids: expect.not.arrayContaining(['accented']) });
    }
  });

  test('a narrative past PostgreSQL tsvector limits is stored and still found by its words', async () => {
    const long = Array.from({ length: 120_000 }, (_, i) => `w${i % 40_000}x word`).join(' ');
    const huge: Resource = {
      resourceType: 'Condition',
      id: 'huge-narrative',
      subject: { reference: 'Patient/x' },
      text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${long} closingword</div>` },
    };
    await insertResources(db.knex, [huge]);
    const find = async (value: string): Promise<string[]> => searchIds(db.knex, parseSearchRequest('Condition', { _text: value }, options));
    expect(await find('word')).toContain('huge-narrative');
    expect(await find('w123x')).toEqual(['huge-narrative']);
  });
});

test('comments are not text, and an unclosed one hides the rest', () => {
  expect(textWords(narrativeText('<div>a<!-- x -->b<!-- y --> c<!-- never closed <p>d</p></div>'))).toEqual(['a', 'b', 'c']);
  expect(textWords(narrativeText(`<div>${'<!--'.repeat(1000)}</div>`))).toEqual([]);
});

describe('_text query values', () => {
  test('words, operators, groups, phrases and prefixes become one tsquery', () => {
    expect(textQuery('(bone OR liver) and metastases', '_text')).toBe("( ( 'bone' | 'liver' ) & 'metastases' )");
    expect(textQuery('Heart  failure', '_text')).toBe("( 'heart' & 'failure' )");
    expect(textQuery('"heart failure" -acute', '_text')).toBe("( ( 'heart' <-> 'failure' ) & !'acute' )");
    expect(textQuery('blood-pressure metast*', '_text')).toBe("( ( 'blood' <-> 'pressure' ) & 'metast':* )");
    expect(textQuery('not "not"', '_text')).toBe("!'not'");
    expect(textQuery('Émile', '_text')).toBe("'emile'");
  });

  test.each([['('], ['a)'], ['"open'], ['-'], ['not'], ['***'], ['()'], ['a or'], ['or b'], ['a or or b']])('%s is a 400 naming _text', (value) => {
    let error: unknown;
    try {
      textQuery(value, '_text');
    } catch (err) {
      error = err;
    }
    expect(JSON.stringify(error)).toContain('_text');
    expect((error as { status?: number }).status).toBe(400);
  });

  test('_text is searchable on every resource with a narrative, and modifiers other than :missing are refused', () => {
    expect(indexedParam('Condition', '_text')).toBeDefined();
    expect(indexedParam('Patient', '_text')).toBeDefined();
    for (const type of ['Bundle', 'Binary', 'Parameters']) expect(indexedParam(type, '_text')).toBeUndefined();
    expect(() => parseSearchRequest('Condition', { '_text:exact': 'burn' }, options)).toThrow(/:exact/);
  });
});

test('a server that starts on a database written before _text fills the narrative words of the rows already there', async () => {
  const database = await copyTemplateDatabase();
  const knex = createKnex(database.url, 2);
  try {
    await knex.raw('ALTER TABLE "Condition" DROP COLUMN "___text"');
    const conditions = loadHl7Examples(['Condition']).filter((r) => narrativeWords(r).length > 0);
    expect(conditions.length).toBeGreaterThan(3);
    for (const c of conditions) {
      await knex('Condition').insert({ id: c.id, version_id: 1, last_updated: new Date(), deleted: false, content: JSON.stringify(c) });
    }
    expect(await prepareSchema(knex)).toBeGreaterThan(0);
    for (const c of conditions.slice(0, 4)) {
      const word = narrativeWords(c).sort((x, y) => y.length - x.length)[0];
      const ids = await searchIds(knex, parseSearchRequest('Condition', { _text: word }, options));
      const expected = conditions.filter((r) => narrativeWords(r).includes(word)).map((r) => r.id as string);
      expect({ word, ids: ids.sort() }).toEqual({ word, ids: expected.sort() });
    }
    expect(await knex.raw(`SELECT indexdef FROM pg_indexes WHERE indexname = 'Condition____text_idx'`)).toMatchObject({
      rows: [{ indexdef: expect.stringMatching(/USING gin \(___text\) WHERE \(___text IS NOT NULL\)$/) }],
    });
  } finally {
    await knex.destroy();
    await database.drop();
  }
});
