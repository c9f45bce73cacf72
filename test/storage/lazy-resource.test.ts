import pg from 'pg';
import type { Bundle, Observation, Resource } from '@medplum/fhirtypes';
import { inCanonicalOrder } from '../../server/storage/canonical-key-order';
import { lazyResource, stringifyWithStoredText, topLevelMembers } from '../../server/storage/lazy-resource';
import { hl7ExampleFiles, readHl7Example } from '../support/hl7-examples';

/**
 * Lazy resources stand for the parsed, canonically ordered content wherever it is read,
 * written or changed: checked against JSON.parse + inCanonicalOrder on PostgreSQL's own
 * jsonb text of every HL7 R4 example.
 */
let client: pg.Client;
/** Each example as PostgreSQL writes its jsonb (`content::text`). */
let stored: { file: string; text: string }[];

beforeAll(async () => {
  client = new pg.Client(process.env.TEST_ADMIN_DATABASE_URL);
  await client.connect();
  const files = hl7ExampleFiles();
  const { rows } = await client.query<{ text: string }>('SELECT x::jsonb::text AS text FROM unnest($1::text[]) WITH ORDINALITY AS u(x, n) ORDER BY n', [
    files.map((f) => JSON.stringify(readHl7Example(f))),
  ]);
  stored = rows.map((r, i) => ({ file: files[i], text: r.text }));
}, 60000);

afterAll(async () => {
  await client.end();
});

const canonical = (text: string): Resource => inCanonicalOrder(JSON.parse(text) as Resource);


test('the top-level members of jsonb text are found, escapes and nesting included', () => {
  const text = '{"a": "x\\"}, [", "b\\\\": {"c": [1, {"d": "]"}]}, "e": -1.5e3, "f": null, "g": [], "h": {}}';
  const { names, spans } = topLevelMembers(text);
  expect(names.map((name, i) => [name, JSON.parse(text.slice(spans[3 * i + 1], spans[3 * i + 2]))])).toEqual(Object.entries(JSON.parse(text)));
  // From each name's opening quote: the member as written.
  expect(names.map((_, i) => JSON.parse(`{${text.slice(spans[3 * i], spans[3 * i + 2])}}`))).toEqual(Object.entries(JSON.parse(text)).map(([k, v]) => ({ [k]: v })));
  expect(topLevelMembers('{}')).toEqual({ names: [], spans: [] });
});

test('every HL7 example reads, writes and stringifies as its parsed, canonically ordered content', () => {
  expect(stored.length).toBeGreaterThan(800);
  for (const { file, text } of stored) {
    const expected = canonical(text);
    const written = stringifyWithStoredText(lazyResource(text));
    expect({ file, json: JSON.parse(written) }).toEqual({ file, json: expected });
    // Members in FHIR order, resourceType first.
    expect({ file, keys: Object.keys(JSON.parse(written)) }).toEqual({ file, keys: Object.keys(expected) });
    // Outside stringifyWithStoredText, JSON.stringify gives exactly what it gave for the parsed resource.
    expect(JSON.stringify(lazyResource(text))).toBe(JSON.stringify(expected));
    // Read member by member, as any caller would.
    const lazy = lazyResource(text) as unknown as Record<string, unknown>;
    expect(Object.keys(lazy)).toEqual(Object.keys(expected));
    expect({ ...lazy }).toEqual(expected);
  }
});

test('a member changed in place, replaced, removed or added is written as it now is', () => {
  const observation = stored.find((s) => s.file === 'Observation-example.json') as { text: string };
  const lazy = lazyResource(observation.text) as Observation;
  const expected = canonical(observation.text) as Observation;
  // In place: the member read is written from its value, not from the stored text.
  (lazy.subject as { display?: string }).display = 'changed in place';
  (expected.subject as { display?: string }).display = 'changed in place';
  lazy.status = 'amended';
  expected.status = 'amended';
  delete (lazy as Partial<Observation>).code;
  delete (expected as Partial<Observation>).code;
  lazy.language = 'en';
  expected.language = 'en';
  lazy.id = 'renamed';
  expected.id = 'renamed';
  const written = JSON.parse(stringifyWithStoredText(lazy));
  expect(written).toEqual(JSON.parse(JSON.stringify(expected)));
  expect(Object.keys(written)).toEqual(Object.keys(inCanonicalOrder(expected)));
});

test('written twice, a resource changed between the two is written as changed the second time', () => {
  const { text } = stored.find((s) => s.file === 'Patient-example.json') as { text: string };
  const lazy = lazyResource(text) as Resource & { gender?: string };
  expect(JSON.parse(stringifyWithStoredText(lazy))).toEqual(canonical(text));
  lazy.gender = 'other';
  expect(JSON.parse(stringifyWithStoredText(lazy)).gender).toBe('other');
  lazy.id = 'another';
  expect(JSON.parse(stringifyWithStoredText(lazy)).id).toBe('another');
});

test('lazy resources inside a Bundle, and pretty output', () => {
  const texts = stored.slice(0, 50).map((s) => s.text);
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', entry: texts.map((t) => ({ resource: lazyResource(t), search: { mode: 'match' } })) };
  const expected = { ...bundle, entry: texts.map((t) => ({ resource: canonical(t), search: { mode: 'match' } })) };
  expect(JSON.parse(stringifyWithStoredText(bundle))).toEqual(JSON.parse(JSON.stringify(expected)));
  expect(JSON.stringify(bundle, null, 2)).toBe(JSON.stringify(expected, null, 2));
});
