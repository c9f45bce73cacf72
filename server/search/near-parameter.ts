import type { LocationPosition } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import { paramColumn } from './column-names';
import type { ParameterType, SqlCondition } from './parameter-type';
import { columnMissing } from './parameter-type';
import { splitUnescaped, unescapeSearchValue } from './search-value-escaping';

/**
 * The special parameter `near` on Location.position (R4 location.html#positional):
 * `near=latitude|longitude|distance|units`, units UCUM (`km` by default, `m`, `[mi_i]`,
 * `[mi_us]`, `[nmi_i]`); without a distance, "near" is within DEFAULT_DISTANCE_KM.
 * One `point` column per parameter (x = longitude, y = latitude, WGS84 degrees) with a
 * GiST index: the search is a bounding-box `<@` (indexed) that also contains every
 * point within the distance, then the haversine great-circle distance (no PostGIS).
 */
export interface NearSearchValue {
  latitude: number;
  longitude: number;
  km: number;
}

export interface NearFilter {
  kind: 'near';
  code: string;
  values: NearSearchValue[];
}

/** Mean Earth radius (IUGG), km. */
export const EARTH_RADIUS_KM = 6371.0088;
export const DEFAULT_DISTANCE_KM = 5;

const KM_PER_UNIT: Record<string, number> = {
  km: 1,
  m: 0.001,
  '[mi_i]': 1.609344,
  '[mi_us]': 1.6093472186944373,
  '[nmi_i]': 1.852,
};

function coordinate(code: string, text: string, limit: number, what: string): number {
  const value = /^[+-]?(\d+\.?\d*|\.\d+)$/.test(text) ? Number(text) : NaN;
  if (!(Math.abs(value) <= limit)) throw badRequest(`${code}: invalid ${what} '${text}'`, code);
  return value;
}

export function parseNearSearchValue(code: string, raw: string): NearSearchValue {
  const parts = splitUnescaped(raw, '|').map(unescapeSearchValue);
  if (parts.length < 2 || parts.length > 4) throw badRequest(`${code} needs latitude|longitude[|distance[|units]], got '${raw}'`, code);
  const latitude = coordinate(code, parts[0], 90, 'latitude');
  const longitude = coordinate(code, parts[1], 180, 'longitude');
  if (parts[2] === undefined || parts[2] === '') return { latitude, longitude, km: DEFAULT_DISTANCE_KM };
  const distance = /^\+?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(parts[2]) ? Number(parts[2]) : NaN;
  if (!Number.isFinite(distance)) throw badRequest(`${code}: invalid distance '${parts[2]}'`, code);
  const unit = parts[3] === undefined || parts[3] === '' ? 'km' : parts[3];
  const factor = KM_PER_UNIT[unit];
  if (factor === undefined) throw badRequest(`${code}: unsupported distance unit '${unit}' (km, m, [mi_i], [mi_us], [nmi_i])`, code);
  return { latitude, longitude, km: distance * factor };
}

/** A lat/long box containing every point within `km` (the whole longitude band near a pole or the antimeridian). */
function boundingBox(v: NearSearchValue): [number, number, number, number] {
  const dLat = (v.km / EARTH_RADIUS_KM) * (180 / Math.PI) * 1.01;
  const south = Math.max(-90, v.latitude - dLat);
  const north = Math.min(90, v.latitude + dLat);
  const maxAbsLat = Math.max(Math.abs(south), Math.abs(north));
  if (maxAbsLat >= 89.9) return [-180, south, 180, north];
  const dLong = dLat / Math.cos((maxAbsLat * Math.PI) / 180);
  const west = v.longitude - dLong;
  const east = v.longitude + dLong;
  if (dLong >= 180 || west < -180 || east > 180) return [-180, south, 180, north];
  return [west, south, east, north];
}

/** Haversine distance in km between the point column `p` (x = long, y = lat) and a search point. */
function haversineKm(p: string): string {
  return (
    `(2 * ${EARTH_RADIUS_KM} * asin(least(1, sqrt(` +
    `power(sin(radians(${p}[1] - ?::float8) / 2), 2) + ` +
    `cos(radians(?::float8)) * cos(radians(${p}[1])) * power(sin(radians(${p}[0] - ?::float8) / 2), 2)))))`
  );
}

function nearCondition(p: string, v: NearSearchValue): SqlCondition {
  const [west, south, east, north] = boundingBox(v);
  return {
    sql: `(${p} <@ box(point(?::float8, ?::float8), point(?::float8, ?::float8)) AND ${haversineKm(p)} <= ?::float8)`,
    bindings: [west, south, east, north, v.latitude, v.latitude, v.longitude, v.km],
  };
}

export const nearParameter: ParameterType = {
  columns(param) {
    return [{ name: paramColumn(param.def.code), sqlType: 'point', indexMethod: 'gist' }];
  },

  extract(param, nodes, out) {
    let point: string | null = null;
    for (const { value } of nodes) {
      const position = value as LocationPosition | undefined;
      const { latitude, longitude } = position ?? {};
      if (typeof latitude === 'number' && typeof longitude === 'number' && Math.abs(latitude) <= 90 && Math.abs(longitude) <= 180) {
        point = `(${longitude},${latitude})`;
        break; // Location.position is 0..1
      }
    }
    out[paramColumn(param.def.code)] = point;
  },

  parse(param, modifier, values): NearFilter {
    const code = param.def.code;
    if (modifier !== undefined) throw badRequest(`Modifier :${modifier} is not supported for ${code}`, code);
    return { kind: 'near', code, values: values.map((v) => parseNearSearchValue(code, v)) };
  },

  condition(param, filter, column) {
    if (filter.kind !== 'near') throw new Error(`near parameter cannot apply a ${filter.kind} filter`);
    const p = column(paramColumn(param.def.code));
    const conditions = filter.values.map((v) => nearCondition(p, v));
    return {
      sql: conditions.length === 1 ? conditions[0].sql : `(${conditions.map((c) => c.sql).join(' OR ')})`,
      bindings: conditions.flatMap((c) => c.bindings),
    };
  },

  missing(param, missing, column) {
    return columnMissing(column(paramColumn(param.def.code)), missing);
  },
};
