import { EARTH_RADIUS_KM } from '../search/near-parameter';

export interface GeoPoint {
  latitude: number;
  longitude: number;
}

/**
 * Haversine distance in km: the same formula and Earth radius as the `near` search
 * parameter's SQL (search/near-parameter.ts), so that a Location `near` finds is within
 * the same distance here.
 */
export function greatCircleKm(a: GeoPoint, b: GeoPoint): number {
  const radians = Math.PI / 180;
  const dLat = (b.latitude - a.latitude) * radians;
  const dLong = (b.longitude - a.longitude) * radians;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.latitude * radians) * Math.cos(b.latitude * radians) * Math.sin(dLong / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}
