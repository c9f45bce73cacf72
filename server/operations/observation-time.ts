import type { Observation } from '@medplum/fhirtypes';
import { parseDateRange } from '../core/date-range';

/**
 * When an Observation was made, as epoch ms (the start of a partial date): its
 * effectiveDateTime or effectiveInstant, a Period's end (else its start); with `timing`,
 * a Timing's latest event; with `issued`, when there is no effective[x], `issued`.
 * Undefined when none of these is there.
 */
export function observationTime(o: Observation, options: { timing?: boolean; issued?: boolean } = {}): number | undefined {
  const effective = o.effectiveDateTime ?? o.effectiveInstant ?? o.effectivePeriod?.end ?? o.effectivePeriod?.start;
  if (effective !== undefined) return startOf(effective);
  const events = options.timing ? (o.effectiveTiming?.event ?? []).map(startOf).filter((t): t is number => t !== undefined) : [];
  if (events.length > 0) return Math.max(...events);
  return options.issued && o.issued !== undefined ? startOf(o.issued) : undefined;
}

function startOf(value: string): number | undefined {
  return parseDateRange(value)?.start.getTime();
}
