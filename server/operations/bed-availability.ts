import type { Location, Organization, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { parseNearSearchValue, type NearSearchValue } from '../search/near-parameter';
import { countBeds, hospitalParameter } from './bed-availability-report';
import { bedsOf, normaliseKind } from './beds';
import { greatCircleKm } from './great-circle-distance';
import { bedsByHospital } from './hospital-beds';
import { OperationInput } from './operation-parameters';

/**
 * `GET Organization/[id]/$bed-availability` and `GET Organization/$bed-availability`:
 * free and total beds by kind, of one organisation (with its departments), or of every
 * hospital that has beds. Counted from the Locations at request time (beds.ts), read
 * through the caller's own store, so a bed status written a moment ago is already in.
 *
 * Parameters (query):
 *  - `kind`: only beds of that kind (case-insensitive; beds.ts bedKind);
 *  - `near=latitude|longitude[|distance[|units]]` (type level only; the syntax of
 *    Location's `near`, km by default): only hospitals with a Location within that
 *    distance, nearest first, each with its `distance` in km.
 */
export const bedAvailability: FhirHandler = async (req, ctx) => {
  const input = OperationInput.of('bed-availability', undefined, req.query);
  const kindText = input.string('kind');
  const kind = kindText === undefined ? undefined : normaliseKind(kindText);
  const nearText = input.string('near');

  if (req.id !== undefined) {
    // Better a 400 than a `near` silently ignored: one organisation has no distance to filter by.
    if (nearText !== undefined) throw badRequest('$bed-availability: near applies only to Organization/$bed-availability', 'near');
    // 404 for an unknown organisation, 410 for a deleted one, before any Location is read.
    const organization = (await ctx.repo.read('Organization', req.id)).resource as Organization & { id: string };
    const beds = await bedsOf(ctx.repo, req.id);
    return answer([hospitalParameter(organization, countBeds(beds, kind))]);
  }

  const near = nearText === undefined ? undefined : parseNearSearchValue('near', nearText);
  const listed = (await bedsByHospital(ctx.repo))
    .map((hospital) => ({
      organization: hospital.organization,
      counts: countBeds(hospital.beds, kind),
      distance: near ? nearestKm(hospital.locations, near) : undefined,
    }))
    .filter((h) => h.counts.total > 0 && (!near || (h.distance !== undefined && h.distance <= near.km)));
  const byName = (a: (typeof listed)[number], b: (typeof listed)[number]): number =>
    (a.organization.name ?? '').localeCompare(b.organization.name ?? '') || a.organization.id.localeCompare(b.organization.id);
  listed.sort(near ? (a, b) => (a.distance as number) - (b.distance as number) || byName(a, b) : byName);
  return answer(listed.map((h) => hospitalParameter(h.organization, h.counts, h.distance)));
};

/** The distance from `near` to the nearest of `locations` that has a position, undefined when none has. */
function nearestKm(locations: readonly Location[], near: NearSearchValue): number | undefined {
  let nearest: number | undefined;
  for (const { position } of locations) {
    if (typeof position?.latitude !== 'number' || typeof position.longitude !== 'number') continue;
    const km = greatCircleKm(near, { latitude: position.latitude, longitude: position.longitude });
    if (nearest === undefined || km < nearest) nearest = km;
  }
  return nearest;
}

function answer(parameter: ParametersParameter[]): { status: number; resource: Parameters } {
  // No hospital at all is a Parameters without `parameter` (FHIR JSON has no empty arrays).
  return { status: 200, resource: { resourceType: 'Parameters', ...(parameter.length > 0 ? { parameter } : {}) } };
}
