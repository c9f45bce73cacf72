import type { SqlCondition } from './parameter-type';
import type { DateSearchValue } from './search-request';

/**
 * SQL for a date prefix (R4 search.html#prefix) where the target is the closed range
 * [lo, hi] and the search value the half-open range [S, E):
 *   eq: target inside search range      ne: not eq
 *   gt: hi >= E (above overlaps)         lt: lo < S (below overlaps)
 *   ge: gt or eq                         le: lt or eq
 *   sa: lo >= E (starts after)           eb: hi < S (ends before)
 *   ap: overlaps the search range widened by 10% of its distance from now
 */
export function dateRangeCondition(lo: string, hi: string, value: DateSearchValue, now = Date.now()): SqlCondition {
  const S = value.start;
  const E = value.end;
  const eq = { sql: `(${lo} >= ?::timestamptz AND ${hi} < ?::timestamptz)`, bindings: [S, E] };
  switch (value.prefix) {
    case 'eq':
      return eq;
    case 'ne':
      return { sql: `NOT ${eq.sql}`, bindings: eq.bindings };
    case 'gt':
      return { sql: `${hi} >= ?::timestamptz`, bindings: [E] };
    case 'lt':
      return { sql: `${lo} < ?::timestamptz`, bindings: [S] };
    case 'ge':
      return { sql: `(${hi} >= ?::timestamptz OR ${eq.sql})`, bindings: [E, ...eq.bindings] };
    case 'le':
      return { sql: `(${lo} < ?::timestamptz OR ${eq.sql})`, bindings: [S, ...eq.bindings] };
    case 'sa':
      return { sql: `${lo} >= ?::timestamptz`, bindings: [E] };
    case 'eb':
      return { sql: `${hi} < ?::timestamptz`, bindings: [S] };
    case 'ap': {
      const [from, to] = approximateRange(value, now);
      return { sql: `(${lo} < ?::timestamptz AND ${hi} >= ?::timestamptz)`, bindings: [to, from] };
    }
  }
}

/**
 * Same prefixes for a point in time (lo = hi = v), simplified so that each is one
 * btree range condition on the column (e.g. ge: v >= S).
 */
export function datePointCondition(v: string, value: DateSearchValue, now = Date.now()): SqlCondition {
  const S = value.start;
  const E = value.end;
  switch (value.prefix) {
    case 'eq':
      return { sql: `(${v} >= ?::timestamptz AND ${v} < ?::timestamptz)`, bindings: [S, E] };
    case 'ne':
      return { sql: `(${v} < ?::timestamptz OR ${v} >= ?::timestamptz)`, bindings: [S, E] };
    case 'gt':
    case 'sa':
      return { sql: `${v} >= ?::timestamptz`, bindings: [E] };
    case 'lt':
    case 'eb':
      return { sql: `${v} < ?::timestamptz`, bindings: [S] };
    case 'ge':
      return { sql: `${v} >= ?::timestamptz`, bindings: [S] };
    case 'le':
      return { sql: `${v} < ?::timestamptz`, bindings: [E] };
    case 'ap': {
      const [from, to] = approximateRange(value, now);
      return { sql: `(${v} >= ?::timestamptz AND ${v} < ?::timestamptz)`, bindings: [from, to] };
    }
  }
}

/** `ap`: the search range widened on both sides by 10% of the distance between it and now. */
export function approximateRange(value: DateSearchValue, now: number): [string, string] {
  const start = Date.parse(value.start);
  const end = value.end === 'infinity' ? start : Date.parse(value.end);
  const distance = Math.abs(now - (start + end) / 2);
  const slack = distance * 0.1;
  return [new Date(start - slack).toISOString(), new Date(end + slack).toISOString()];
}
