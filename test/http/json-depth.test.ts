import { jsonDepthExceeds } from '../../server/http/json-depth';

/** The nesting check that runs on every parsed body (http/read-body.ts). */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  const children = Array.isArray(value) ? value : Object.values(value as object);
  return 1 + Math.max(0, ...children.map(depthOf));
}

test('a value is over the limit exactly when its objects and arrays nest deeper than it, whatever its strings hold', () => {
  const values = [
    { a: '{{{[[[', b: ['"}]', '\\', '\\"{'], c: { d: { e: ['x\\\\"[', { f: '\\\\\\"' }] } } },
    [[[['{"a":[1,2]}']]]],
    { text: '<div>{ not [ structure</div>', deep: [{ a: [{ b: [{}] }] }], flat: [1, 'two', null, true] },
    [{}, [], [[{}]], { a: null }],
    'just a string with { and [',
    42,
    null,
    [],
    {},
  ];
  for (const value of values) {
    const depth = depthOf(value);
    expect(jsonDepthExceeds(value, depth)).toBe(false);
    if (depth > 0) expect(jsonDepthExceeds(value, depth - 1)).toBe(true);
  }
});

test('nesting far past the limit is caught without recursing that deep, after long strings and in objects and arrays alike', () => {
  const arrays = JSON.parse(`{"a":"${'x'.repeat(100_000)}","b":${'['.repeat(500_000)}${']'.repeat(500_000)}}`);
  expect(jsonDepthExceeds(arrays, 200)).toBe(true);
  const objects = JSON.parse(`[1,${'{"a":'.repeat(300)}1${'}'.repeat(300)}]`);
  expect(jsonDepthExceeds(objects, 200)).toBe(true);
  expect(jsonDepthExceeds(objects, 301)).toBe(false);
});
