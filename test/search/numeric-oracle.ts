/**
 * The tests' own reading of R4 number/quantity semantics (search.html#number,
 * #quantity), written apart from the engine: values as closed ranges [lo, hi] (a point
 * when lo = hi; ±Infinity when open), search values with their implicit precision.
 */
export interface OracleQuantity {
  lo: number;
  hi: number;
  system?: string;
  code?: string;
  unit?: string;
}

/** JS doubles: rounding bounds to 15 digits makes `7.2 - 0.05` the double of `7.15`, as PostgreSQL reads it. */
function round(n: number): number {
  return Number(n.toPrecision(15));
}

export interface OracleSearchNumber {
  prefix: string;
  x: number;
  low: number;
  high: number;
  approxLow: number;
  approxHigh: number;
}

export function searchNumber(text: string): OracleSearchNumber {
  const m = /^([a-z]{2})?(-?)(\d*)(?:\.(\d*))?(?:e([+-]?\d+))?$/i.exec(text);
  if (!m) throw new Error(`bad test number ${text}`);
  const [, prefix = 'eq', , , fraction = '', exponent = '0'] = m;
  const x = Number(text.slice(m[1] === undefined ? 0 : 2));
  const half = 0.5 * 10 ** (Number(exponent) - fraction.length);
  const low = round(x - half);
  const high = round(x + half);
  return { prefix, x, low, high, approxLow: Math.min(low, round(x - Math.abs(x) / 10)), approxHigh: Math.max(high, round(x + Math.abs(x) / 10)) };
}

/** R4 prefixes for a stored range [lo, hi]. */
export function rangeMatches(lo: number, hi: number, s: OracleSearchNumber): boolean {
  const eq = lo >= s.low && hi < s.high;
  switch (s.prefix) {
    case 'eq':
      return eq;
    case 'ne':
      return !eq;
    case 'gt':
      return hi > s.x;
    case 'ge':
      return hi >= s.x;
    case 'lt':
      return lo < s.x;
    case 'le':
      return lo <= s.x;
    case 'sa':
      return lo > s.x;
    case 'eb':
      return hi < s.x;
    case 'ap':
      return lo <= s.approxHigh && hi >= s.approxLow;
    default:
      throw new Error(`prefix ${s.prefix}`);
  }
}

export const PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];

type Json = Record<string, any>;

/** A Quantity, Age, Duration, Money, Range or SampledData value (told apart by shape) as an OracleQuantity. */
export function oracleQuantity(v: Json): OracleQuantity | undefined {
  const unit = (q: Json | undefined): Partial<OracleQuantity> => ({ system: q?.system, code: q?.code, unit: q?.unit });
  if ('low' in v || 'high' in v) {
    const lo = v.low?.value;
    const hi = v.high?.value;
    if (lo === undefined && hi === undefined) return undefined;
    return { lo: lo ?? -Infinity, hi: hi ?? Infinity, ...unit(lo !== undefined ? v.low : v.high) };
  }
  if ('origin' in v) {
    if (typeof v.data !== 'string' || v.origin?.value === undefined) return undefined;
    const values = v.data
      .split(' ')
      .filter((d: string) => d !== '' && !Number.isNaN(Number(d)))
      .map((d: string) => round(v.origin.value + (v.factor ?? 1) * Number(d)));
    return values.length ? { lo: Math.min(...values), hi: Math.max(...values), ...unit(v.origin) } : undefined;
  }
  if (typeof v.value !== 'number') return undefined;
  if ('currency' in v) return { lo: v.value, hi: v.value, system: 'urn:iso:std:iso:4217', code: v.currency };
  if (v.comparator === '<' || v.comparator === '<=') return { lo: -Infinity, hi: v.value, ...unit(v) };
  if (v.comparator === '>' || v.comparator === '>=') return { lo: v.value, hi: Infinity, ...unit(v) };
  return { lo: v.value, hi: v.value, ...unit(v) };
}

/** `[prefix]n`, `[prefix]n||code` (code or unit), `[prefix]n|system|code`. */
export function quantityMatches(q: OracleQuantity, search: string): boolean {
  const [n, system, code] = search.split('|');
  if (!rangeMatches(q.lo, q.hi, searchNumber(n))) return false;
  if (system) return q.system === system && (!code || q.code === code);
  if (code) return q.code === code || q.unit === code;
  return true;
}

/** A few values to search for, spread over the data: smallest, median, largest, and one with decimals. */
export function sampleNumbers(values: number[]): number[] {
  // Beyond 1e15 or 15 digits a double cannot hold the precision range this oracle
  // computes in doubles (the engine works in exact decimals).
  const sorted = [...new Set(values.filter((v) => Number.isFinite(v) && Math.abs(v) < 1e15 && String(v).replace(/e.*$|\D/g, '').replace(/^0+/, '').length <= 15))].sort((a, b) => a - b);
  if (sorted.length === 0) return [];
  const decimal = sorted.find((v) => !Number.isInteger(v));
  return [...new Set([sorted[0], sorted[Math.floor(sorted.length / 2)], sorted[sorted.length - 1], ...(decimal === undefined ? [] : [decimal])])];
}
