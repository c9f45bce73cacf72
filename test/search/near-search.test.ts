import type { Location, Resource } from '@medplum/fhirtypes';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { officialValues } from './independent-evaluation';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';
import { createResourceTable, createSearchTestDatabase, insertResources, markDeleted, searchIds, type SearchTestDatabase } from './search-test-database';

const options = { strict: true, defaultCount: 20, maxCount: 1000 };

/** Great-circle distance in km (haversine, mean Earth radius), written here apart from the engine's SQL. */
function distanceKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180;
  const a = Math.sin(((lat2 - lat1) * rad) / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2;
  return 2 * 6371.0088 * Math.asin(Math.min(1, Math.sqrt(a)));
}

const UNIT_KM: Record<string, number> = { '': 1, km: 1, m: 0.001, '[mi_i]': 1.609344 };

/** Places at the edges: near the antimeridian and near the north pole. */
const EDGES: Location[] = [
  { resourceType: 'Location', id: 'fiji-east', position: { latitude: -17, longitude: 179.95 } },
  { resourceType: 'Location', id: 'fiji-west', position: { latitude: -17, longitude: -179.95 } },
  { resourceType: 'Location', id: 'pole-a', position: { latitude: 89.99, longitude: 0 } },
  { resourceType: 'Location', id: 'pole-b', position: { latitude: 89.99, longitude: 180 } },
];

describe('near search on Location.position', () => {
  let db: SearchTestDatabase;
  let positions: Map<string, { latitude: number; longitude: number } | undefined>;

  beforeAll(async () => {
    db = await createSearchTestDatabase();
    await createResourceTable(db.knex, 'Location');
    const resources = uniqueById([...loadHl7Examples(['Location']), ...loadSynthea(['Location'], 0), ...EDGES]) as Resource[];
    await insertResources(db.knex, resources);
    const deleted = resources.filter((r, i) => i % 9 === 2 && !EDGES.includes(r as Location));
    for (const r of deleted) await markDeleted(db.knex, r);
    const live = resources.filter((r) => !deleted.includes(r));
    positions = new Map(live.map((r) => [r.id as string, officialValues(r, 'near')[0] as { latitude: number; longitude: number } | undefined]));
  });

  afterAll(async () => {
    await db?.drop();
  });

  const find = (query: Record<string, string | string[]>): Promise<string[]> =>
    searchIds(db.knex, parseSearchRequest('Location', query, options)).then((ids) => ids.sort());

  const within = (lat: number, lon: number, km: number): string[] =>
    [...positions].filter(([, p]) => p && distanceKm(lat, lon, p.latitude, p.longitude) <= km).map(([id]) => id).sort();

  test('near=lat|long|distance|units matches exactly the positions within that great-circle distance', async () => {
    const withPosition = [...positions.values()].filter((p): p is { latitude: number; longitude: number } => !!p);
    expect(withPosition.length).toBeGreaterThan(10);
    let selective = 0;
    for (const center of withPosition.filter((_, i) => i % Math.ceil(withPosition.length / 8) === 0)) {
      for (const [distance, unit] of [['1', ''], ['5', 'km'], ['25', 'km'], ['800', 'm'], ['20', '[mi_i]'], ['200', 'km']]) {
        const km = Number(distance) * UNIT_KM[unit];
        const value = `${center.latitude}|${center.longitude}|${distance}${unit ? `|${unit}` : ''}`;
        const expected = within(center.latitude, center.longitude, km);
        expect({ value, ids: await find({ near: value }) }).toEqual({ value, ids: expected });
        if (expected.length > 1 && expected.length < positions.size) selective++;
      }
    }
    expect(selective).toBeGreaterThan(0);
  });

  test('without a distance, near means within 5 km; commas are OR, repetition AND; :missing', async () => {
    const [a, b] = [...positions.values()].filter((p): p is { latitude: number; longitude: number } => !!p);
    expect(await find({ near: `${a.latitude}|${a.longitude}` })).toEqual(within(a.latitude, a.longitude, 5));
    const or = [...new Set([...within(a.latitude, a.longitude, 3), ...within(b.latitude, b.longitude, 3)])].sort();
    expect(await find({ near: `${a.latitude}|${a.longitude}|3,${b.latitude}|${b.longitude}|3` })).toEqual(or);
    const and = within(a.latitude, a.longitude, 50).filter((id) => within(b.latitude, b.longitude, 50).includes(id));
    expect(await find({ near: [`${a.latitude}|${a.longitude}|50`, `${b.latitude}|${b.longitude}|50`] })).toEqual(and);
    expect(await find({ 'near:missing': 'true' })).toEqual([...positions].filter(([, p]) => !p).map(([id]) => id).sort());
    expect(await find({ 'near:missing': 'false' })).toEqual([...positions].filter(([, p]) => p).map(([id]) => id).sort());
  });

  test('the bounding box does not lose places across the antimeridian or near a pole', async () => {
    expect(await find({ near: '-17|179.99|20' })).toEqual(['fiji-east', 'fiji-west']);
    expect(await find({ near: '89.99|90|5' })).toEqual(['pole-a', 'pole-b']);
  });

  test('malformed coordinates, distances or units are a 400 in both modes', () => {
    for (const strict of [true, false]) {
      for (const value of ['x', '42', '91|0|1', '0|181|1', '0|0|-1', '0|0|abc', '0|0|1|furlong', '0|0|1|km|x']) {
        expect(() => parseSearchRequest('Location', { near: value }, { ...options, strict })).toThrow(expect.objectContaining({ status: 400 }));
      }
      expect(() => parseSearchRequest('Location', { 'near:exact': '0|0' }, { ...options, strict })).toThrow(expect.objectContaining({ status: 400 }));
    }
  });
});
