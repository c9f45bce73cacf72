import type { Period, Timing } from '@medplum/fhirtypes';
import type { TypedNode } from './compile-path-expression';
import { dateRange } from './date-search-value';

/**
 * The envelope of a date parameter's values: the earliest start and the latest end
 * (inclusive, epoch ms), over date / dateTime / instant (their precision's range),
 * Period (open ends are ±infinity) and Timing (its events and bounds; R4 search.html#date
 * says only the outer limits of a schedule count).
 */
export interface DateEnvelope {
  lo: number;
  hi: number;
}

function widen(envelope: DateEnvelope | undefined, lo: number, hi: number): DateEnvelope {
  if (!envelope) return { lo, hi };
  return { lo: Math.min(envelope.lo, lo), hi: Math.max(envelope.hi, hi) };
}

function stringRange(text: unknown): { lo: number; hi: number } | undefined {
  if (typeof text !== 'string') return undefined;
  const range = dateRange(text);
  return range && { lo: range.start, hi: range.end - 1 };
}

function periodRange(period: Period | undefined): { lo: number; hi: number } | undefined {
  if (!period || (period.start === undefined && period.end === undefined)) return undefined;
  const start = stringRange(period.start);
  const end = stringRange(period.end);
  if (!start && !end) return undefined;
  return { lo: start?.lo ?? -Infinity, hi: end?.hi ?? Infinity };
}

export function dateEnvelope(nodes: readonly TypedNode[]): DateEnvelope | undefined {
  let envelope: DateEnvelope | undefined;
  const add = (range: { lo: number; hi: number } | undefined): void => {
    if (range) envelope = widen(envelope, range.lo, range.hi);
  };
  for (const node of nodes) {
    if (node.type === 'Period') add(periodRange(node.value as Period));
    else if (node.type === 'Timing') {
      const timing = node.value as Timing;
      for (const event of timing.event ?? []) add(stringRange(event));
      add(periodRange(timing.repeat?.boundsPeriod));
    } else add(stringRange(node.value));
  }
  return envelope;
}

/** A JS number (ms, possibly ±Infinity) as a value `pg` writes into timestamptz. */
export function toTimestamptz(ms: number): string {
  if (ms === Infinity) return 'infinity';
  if (ms === -Infinity) return '-infinity';
  const date = new Date(ms);
  const year = date.getUTCFullYear();
  if (year > 9999) return 'infinity';
  if (year < 1) return '-infinity';
  return date.toISOString();
}
