import { jsonDepthExceeds } from '../../server/http/json-depth';

/** The nesting check that runs on every body before JSON.parse (http/read-body.ts). */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  const children = Array.isArray(value) ? value : Object.values(value as object);
  return 1 + Math.max(0, ...children.map(depthOf));
}

test('the depth counted matches the parsed document’s, whatever brackets and escaped quotes its strings hold', () => {
  const tricky = [
    { a: '{{{[[[', b: ['"}]', '\\', '\\"{'], c: { d: { e: ['x\\\\"[', { f: '\\\\\\"' }] } } },
    [[[['{"a":[1,2]}']]]],
    { text: '<div>{ not [ structure</div>', deep: [{ a: [{ b: [{}] }] }] },
    'just a string with { and [',
    [],
    {},
  ];
  for (const value of tricky) {
    const text = JSON.stringify(value);
    const depth = depthOf(value);
    expect(jsonDepthExceeds(text, depth)).toBe(false);
    if (depth > 0) expect(jsonDepthExceeds(text, depth - 1)).toBe(true);
  }
});

test('a document nested past the limit is caught even when the nesting comes after long strings', () => {
  const text = `{"a":"${'x'.repeat(100_000)}","b":${'['.repeat(300)}${']'.repeat(300)}}`;
  expect(jsonDepthExceeds(text, 200)).toBe(true);
  expect(jsonDepthExceeds(text, 301)).toBe(false);
});

test('malformed text (an unterminated string) ends the scan without an error, for JSON.parse to refuse', () => {
  expect(jsonDepthExceeds('{"a":"unterminated', 5)).toBe(false);
});
