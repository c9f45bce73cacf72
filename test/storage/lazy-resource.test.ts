import pg from 'pg';
import type { Bundle, Observation, Resource } from '@medplum/fhirtypes';
import { findTopLevelMember, JSONB_AS_TEXT, lazyResource, peekMember, stringifyWithStoredText, topLevelMembers } from '../../server/storage/lazy-resource';
import { hl7ExampleFiles, readHl7Example } from '../support/hl7-examples';

/**
 * Lazy resources stand for the parsed content wherever it is read, written or changed:
 * checked on PostgreSQL's own text of every HL7 R4 example, as the repository selects it.
 */
let client: pg.Client;
/** Each example as stored (`content`, parsed) and as the repository reads it lazily (`text`). */
let stored: { file: string; type: string; text: string; content: Resource }[];

beforeAll(async () => {
  client = new pg.Client(process.env.TEST_ADMIN_DATABASE_URL);
  await client.connect();
  const files = hl7ExampleFiles();
  // The jsonb received as text, as the repository's searches receive it.
  const { rows } = await client.query<{ text: string }>({
    text: 'SELECT x::jsonb AS text FROM unnest($1::text[]) WITH ORDINALITY AS u(x, n) ORDER BY n',
    values: [files.map((f) => JSON.stringify(readHl7Example(f)))],
    types: JSONB_AS_TEXT,
  });
  stored = rows.map((r, i) => {
    const content = JSON.parse(r.text) as Resource;
    return { file: files[i], type: content.resourceType, text: r.text, content };
  });
}, 60000);

afterAll(async () => {
  await client.end();
});

const lazy = (s: { type: string; text: string }): Resource => lazyResource(s.text, s.type);
const example = (file: string) => stored.find((s) => s.file === file) as (typeof stored)[number];

test('the top-level members of jsonb text are found, escapes and nesting included', () => {
  const text = '{"a": "x\\"}, [", "b\\\\": {"c": [1, {"d": "]"}]}, "e": -1.5e3, "f": null, "g": [], "h": {}}';
  const { names, spans } = topLevelMembers(text);
  expect(names.map((name, i) => [name, JSON.parse(text.slice(spans[3 * i + 1], spans[3 * i + 2]))])).toEqual(Object.entries(JSON.parse(text)));
  // From each name's opening quote: the member as written.
  expect(names.map((_, i) => JSON.parse(`{${text.slice(spans[3 * i], spans[3 * i + 2])}}`))).toEqual(Object.entries(JSON.parse(text)).map(([k, v]) => ({ [k]: v })));
  expect(topLevelMembers('{}')).toEqual({ names: [], spans: [] });
});

test('every HL7 example reads, lists and writes as its stored content, resourceType first', () => {
  expect(stored.length).toBeGreaterThan(800);
  for (const s of stored) {
    const { file, content } = s;
    const written = stringifyWithStoredText(lazy(s));
    expect({ file, json: JSON.parse(written) }).toEqual({ file, json: content });
    expect({ file, first: Object.keys(JSON.parse(written))[0] }).toEqual({ file, first: 'resourceType' });
    // No member twice (JSON.parse would keep the last one silently): as many resourceTypes as the resource holds.
    const count = (json: string): number => json.split('"resourceType"').length - 1;
    expect({ file, resourceTypes: count(written) }).toEqual({ file, resourceTypes: count(JSON.stringify(content)) });
    // Outside stringifyWithStoredText, JSON.stringify writes the same resource.
    expect({ file, json: JSON.parse(JSON.stringify(lazy(s))) }).toEqual({ file, json: content });
    // Read member by member, as any caller would; resourceType and id at once.
    const resource = lazy(s) as unknown as Record<string, unknown>;
    expect([resource.resourceType, resource.id]).toEqual([content.resourceType, content.id]);
    expect(Object.keys(resource).sort()).toEqual(Object.keys(content).sort());
    expect({ ...resource }).toEqual(content);
    expect('meta' in resource).toBe('meta' in content);
  }
});

test('each top-level member is found reading only the members before it, and an absent one is absent, in every HL7 example', () => {
  const absent = ['subject', 'patient', 'beneficiary', 'zzz', 'a', 'identifierx'];
  for (const { file, text, content } of stored) {
    const expected = content as unknown as Record<string, unknown>;
    for (const name of [...Object.keys(expected), ...absent]) {
      const span = findTopLevelMember(text, name);
      expect({ file, name, value: span ? JSON.parse(text.slice(span[1], span[2])) : undefined }).toEqual({ file, name, value: expected[name] });
      if (span) expect(JSON.parse(`{${text.slice(span[0], span[2])}}`)).toEqual({ [name]: expected[name] });
    }
  }
});

test('peeking at a member leaves it untouched: written as stored, and read later as usual', () => {
  const s = example('Observation-example.json');
  const resource = lazy(s);
  expect(peekMember(resource, 'subject')).toEqual((s.content as Observation).subject);
  expect(peekMember(resource, 'beneficiary')).toBeUndefined();
  expect(peekMember({ subject: 1 }, 'subject')).toBe(1);
  // Still the stored text, character for character.
  expect(stringifyWithStoredText(resource)).toBe(`{"resourceType":"Observation",${s.text.slice(1).replace('"resourceType": "Observation", ', '')}`);
  expect((resource as Observation).subject).toEqual((s.content as Observation).subject);
});

test('a member asked for and absent is undefined; a key inside a value is not a member', () => {
  const patient = lazyResource('{"id": "p1", "text": {"div": "<div>\\"subject\\": here</div>"}, "contact": [{"name": {"family": "x"}}], "resourceType": "Patient"}', 'Patient') as unknown as Record<string, unknown>;
  expect(patient.name).toBeUndefined();
  expect(patient.subject).toBeUndefined();
  expect('name' in patient).toBe(false);
  expect((patient.contact as { name: unknown }[])[0].name).toEqual({ family: 'x' });
  expect(JSON.parse(stringifyWithStoredText(patient))).toEqual({
    resourceType: 'Patient',
    id: 'p1',
    contact: [{ name: { family: 'x' } }],
    text: { div: '<div>"subject": here</div>' },
  });
});

test('a member changed in place, replaced, removed or added is written as it now is', () => {
  const s = example('Observation-example.json');
  const resource = lazy(s) as Observation;
  const expected = structuredClone(s.content) as Observation;
  // In place: the member read is written from its value, not from the stored text.
  (resource.subject as { display?: string }).display = 'changed in place';
  (expected.subject as { display?: string }).display = 'changed in place';
  resource.status = 'amended';
  expected.status = 'amended';
  delete (resource as Partial<Observation>).code;
  delete (expected as Partial<Observation>).code;
  resource.language = 'en';
  expected.language = 'en';
  resource.id = 'renamed';
  expected.id = 'renamed';
  const written = JSON.parse(stringifyWithStoredText(resource));
  expect(written).toEqual(expected);
  expect(Object.keys(written)[0]).toBe('resourceType');
});

test('written twice, a resource changed between the two is written as changed the second time', () => {
  const s = example('Patient-example.json');
  const resource = lazy(s) as Resource & { gender?: string };
  expect(JSON.parse(stringifyWithStoredText(resource))).toEqual(s.content);
  resource.gender = 'other';
  expect(JSON.parse(stringifyWithStoredText(resource)).gender).toBe('other');
  resource.id = 'another';
  expect(JSON.parse(stringifyWithStoredText(resource)).id).toBe('another');
  (resource as { resourceType: string }).resourceType = 'Person';
  expect(JSON.parse(stringifyWithStoredText(resource)).resourceType).toBe('Person');
});

test('lazy resources inside a Bundle, and pretty output', () => {
  const some = stored.slice(0, 50);
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', entry: some.map((s) => ({ resource: lazy(s), search: { mode: 'match' } })) };
  const expected = { ...bundle, entry: some.map((s) => ({ resource: s.content, search: { mode: 'match' } })) };
  expect(JSON.parse(stringifyWithStoredText(bundle))).toEqual(expected);
  expect(JSON.parse(JSON.stringify(bundle, null, 2))).toEqual(expected);
  expect(JSON.stringify(bundle, null, 2)).toContain('\n    {\n      "resource": {\n        "resourceType"');
});
