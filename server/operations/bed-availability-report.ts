import type { Organization, ParametersParameter } from '@medplum/fhirtypes';
import { isFree, isInService, type Bed } from './beds';

export interface BedCount {
  free: number;
  total: number;
}

export interface BedCounts extends BedCount {
  /** By kind, in code order. */
  kinds: (BedCount & { code: string })[];
}

/**
 * Free and total beds, overall and by kind; `kind` (normalised) restricts both to that
 * kind, and then that kind is listed even at zero, so that "no ICU bed" is an answer.
 * Inactive beds are no capacity (beds.ts isInService) and counted nowhere.
 */
export function countBeds(beds: readonly Bed[], kind?: string): BedCounts {
  const byKind = new Map<string, BedCount>();
  if (kind !== undefined) byKind.set(kind, { free: 0, total: 0 });
  for (const bed of beds) {
    if (!isInService(bed.location) || (kind !== undefined && bed.kind !== kind)) continue;
    let count = byKind.get(bed.kind);
    if (!count) byKind.set(bed.kind, (count = { free: 0, total: 0 }));
    count.total++;
    if (isFree(bed.location)) count.free++;
  }
  const kinds = [...byKind].map(([code, count]) => ({ code, ...count })).sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
  return {
    free: kinds.reduce((sum, k) => sum + k.free, 0),
    total: kinds.reduce((sum, k) => sum + k.total, 0),
    kinds,
  };
}

/**
 * One `hospital` parameter: `organization`, `distance` (when asked `near`), overall `free`
 * and `total`, then one `kind` part per bed kind with its `code`, `free` and `total`.
 */
export function hospitalParameter(organization: Organization & { id: string }, counts: BedCounts, distanceKm?: number): ParametersParameter {
  const part: ParametersParameter[] = [
    { name: 'organization', valueReference: { reference: `Organization/${organization.id}`, ...(organization.name ? { display: organization.name } : {}) } },
  ];
  if (distanceKm !== undefined) {
    // To the metre: more digits would only claim a precision the positions do not have.
    const value = Math.round(distanceKm * 1000) / 1000;
    part.push({ name: 'distance', valueQuantity: { value, unit: 'km', system: 'http://unitsofmeasure.org', code: 'km' } });
  }
  part.push({ name: 'free', valueInteger: counts.free }, { name: 'total', valueInteger: counts.total });
  for (const kind of counts.kinds) {
    part.push({
      name: 'kind',
      part: [
        { name: 'code', valueString: kind.code },
        { name: 'free', valueInteger: kind.free },
        { name: 'total', valueInteger: kind.total },
      ],
    });
  }
  return { name: 'hospital', part };
}
