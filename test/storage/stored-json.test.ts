import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { createKnex } from '../../server/storage/database';
import { inCanonicalOrder } from '../../server/storage/canonical-key-order';
import { lazyResource, stringifyResource, topLevelMembers, topLevelReference, untouchedText } from '../../server/storage/stored-json';
import { hl7ExampleFiles, readHl7Example } from '../support/hl7-examples';
import { startTestServer, type TestServer } from '../support/test-server';

let server: TestServer;
let knex: Knex;
/** Every HL7 example resource as PostgreSQL writes it back from JSONB. */
let storedTexts: string[];

beforeAll(async () => {
  server = await startTestServer();
  knex = createKnex(server.databaseUrl, 2);
  const examples = hl7ExampleFiles().map(readHl7Example);
  storedTexts = [];
  for (let i = 0; i < examples.length; i += 200) {
    const chunk = examples.slice(i, i + 200);
    const result = await knex.raw('SELECT x::text AS t FROM jsonb_array_elements(?::jsonb) x', [JSON.stringify(chunk)]);
    storedTexts.push(...(result.rows as { t: string }[]).map((r) => r.t));
  }
}, 120000);
afterAll(async () => {
  await knex.destroy();
  await server.stop();
});

test('every HL7 example read from its stored text is the parsed content, top level in FHIR order', () => {
  expect(storedTexts.length).toBeGreaterThan(500);
  for (const text of storedTexts) {
    const expected = inCanonicalOrder(JSON.parse(text) as Resource);
    const lazy = lazyResource(text);
    const written = untouchedText(lazy) as string;
    // The text handed out parses to the same resource, with the same top-level order.
    expect(Object.keys(JSON.parse(written))).toEqual(Object.keys(expected));
    expect(JSON.parse(written)).toEqual(expected);
    // And the resource, once looked into, is that content too.
    expect(Object.keys(lazy)).toEqual(Object.keys(expected));
    expect(lazy).toEqual(expected);
  }
});

test('the top-level members of a stored text are found past strings holding quotes, escapes and brackets', () => {
  const text = String.raw`{"a": "x\"}]{[\\", "b": [1, {"c": "\\\""}, -2.5e3], "c\"d": {"e": [[], {}]}, "f": true, "g": null, "h": 0}`;
  const members = topLevelMembers(text);
  expect(members.map((m) => m.key)).toEqual(['a', 'b', 'c"d', 'f', 'g', 'h']);
  const parsed = JSON.parse(text) as Record<string, unknown>;
  for (const m of members) expect(JSON.parse(text.slice(m.valueStart, m.end))).toEqual(parsed[m.key]);
});

test('reading resourceType and id leaves a lazy resource as stored; any other read parses it', async () => {
  const [text] = (await knex.raw(`SELECT ?::jsonb::text AS t`, [JSON.stringify({ resourceType: 'Observation', id: 'o1', status: 'final', subject: { reference: 'Patient/p1' }, code: { text: 'x' } })])).rows.map(
    (r: { t: string }) => r.t
  );
  const lazy = lazyResource(text);
  expect(lazy.resourceType).toBe('Observation');
  expect(lazy.id).toBe('o1');
  expect(topLevelReference(lazy, 'subject')).toBe('Patient/p1');
  expect(topLevelReference(lazy, 'patient')).toBeUndefined();
  expect(await Promise.resolve(lazy)).toBe(lazy);
  expect(untouchedText(lazy)).toBeDefined();
  expect((lazy as { status?: string }).status).toBe('final');
  expect(untouchedText(lazy)).toBeUndefined();
});

test('a change to a lazy resource is written, not its stored text', () => {
  const lazy = lazyResource('{"id": "p1", "active": true, "resourceType": "Patient"}') as Resource & { active?: boolean };
  lazy.active = false;
  expect(JSON.parse(stringifyResource(lazy))).toEqual({ resourceType: 'Patient', id: 'p1', active: false });
  const nested = lazyResource('{"id": "p2", "name": [{"family": "A"}], "resourceType": "Patient"}') as Resource & { name: { family: string }[] };
  nested.name[0].family = 'B';
  expect(JSON.parse(stringifyResource(nested))).toEqual({ resourceType: 'Patient', id: 'p2', name: [{ family: 'B' }] });
});

test('a searchset with stored entries is written as JSON.stringify writes the parsed Bundle', () => {
  const texts = storedTexts.slice(0, 30);
  const entries = texts.map((t, i) => ({
    fullUrl: `http://x/fhir/"resource":0/${i}`,
    resource: lazyResource(t),
    search: { mode: 'match' as const },
  }));
  // One entry looked into: written as an object.
  void (entries[3].resource as { meta?: unknown }).meta;
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', total: 30, link: [{ relation: 'self', url: 'http://x/fhir/Patient' }], entry: entries };
  const expected = {
    ...bundle,
    entry: texts.map((t, i) => ({ fullUrl: entries[i].fullUrl, resource: inCanonicalOrder(JSON.parse(t) as Resource), search: { mode: 'match' } })),
  };
  const written = stringifyResource(bundle);
  expect(JSON.parse(written)).toEqual(JSON.parse(JSON.stringify(expected)));
  expect(untouchedText(entries[0].resource)).toBeDefined();
});
