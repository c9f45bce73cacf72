import { isValidId, newId } from '../../server/core/ids';

test('new server ids are valid R4 ids in UUID version 7 form', () => {
  const id = newId();
  expect(isValidId(id)).toBe(true);
  expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test('ids made in a later millisecond sort after earlier ones, so the default search order is creation order', async () => {
  const earlier = Array.from({ length: 50 }, () => newId());
  await new Promise((resolve) => setTimeout(resolve, 2));
  const later = Array.from({ length: 50 }, () => newId());
  for (const a of earlier) for (const b of later) expect(a < b).toBe(true);
  expect(new Set([...earlier, ...later]).size).toBe(100);
});
