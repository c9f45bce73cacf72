import { badRequest } from '../core/outcome';
import type { DatePrefix } from './search-request';

/**
 * A number search value (R4 search.html#number) with its implicit precision: `100` is
 * [99.5, 100.5), `100.00` is [99.995, 100.005), `1e2` is [50, 150) — half a unit of the
 * last significant digit. (The spec's table says 1e2 is [95, 105), which contradicts its
 * own "to 1 significant figure"; we follow the significant-figure rule, as HAPI does.)
 * gt/lt/ge/le/sa/eb compare with the exact value ("greater than exactly 100"); `ap` is
 * the precision range widened to ±10% of the value. Bounds are exact decimal strings, so
 * nothing is lost to binary floating point.
 */
export type NumberPrefix = DatePrefix;

export interface NumberSearchValue {
  prefix: NumberPrefix;
  /** The value as written, normalised to a plain decimal string. */
  exact: string;
  /** [low, high): the implicit precision range. */
  low: string;
  high: string;
  /** [approxLow, approxHigh]: for `ap`, the precision range united with ±10%. */
  approxLow: string;
  approxHigh: string;
}

const PREFIXES: ReadonlySet<string> = new Set(['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']);
const NUMBER = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,4}))?$/;

/** `n × 10^exp` as a plain decimal string (`-995`, -1 → `-99.5`). */
export function decimalString(n: bigint, exp: number): string {
  const negative = n < 0n;
  let digits = (negative ? -n : n).toString();
  if (exp >= 0) digits += '0'.repeat(exp);
  else {
    digits = digits.padStart(-exp + 1, '0');
    const point = digits.length + exp;
    digits = `${digits.slice(0, point)}.${digits.slice(point)}`.replace(/\.?0+$/, '') || '0';
  }
  return negative && digits !== '0' ? `-${digits}` : digits;
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

/** Splits `ge100` into its prefix and number; a leading letter pair that is not a prefix is a 400. */
export function splitPrefix(code: string, text: string): { prefix: NumberPrefix; rest: string } {
  const m = /^([a-z]{2})(.*)$/.exec(text);
  if (!m) return { prefix: 'eq', rest: text };
  if (!PREFIXES.has(m[1])) throw badRequest(`Unknown prefix '${m[1]}' in ${code}=${text}`, code);
  return { prefix: m[1] as NumberPrefix, rest: m[2] };
}

/** Parses the number part (no prefix); a 400 when it is not a decimal number. */
export function parseDecimal(code: string, prefix: NumberPrefix, text: string): NumberSearchValue {
  const m = NUMBER.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw badRequest(`Invalid number '${text}' for parameter ${code}`, code);
  const [, sign, whole, fraction = '', exponent = '0'] = m;
  // value = mantissa × 10^exp, exp counting the written fraction digits.
  const mantissa = BigInt(`${sign === '-' ? '-' : ''}${whole}${fraction}` || '0');
  const exp = Number(exponent) - fraction.length;
  // In units of 10^(exp-1): the value is 10m, half a unit of the last digit is 5, 10% is |m|.
  const ten = mantissa * 10n;
  const abs = mantissa < 0n ? -mantissa : mantissa;
  const scale = exp - 1;
  return {
    prefix,
    exact: decimalString(ten, scale),
    low: decimalString(ten - 5n, scale),
    high: decimalString(ten + 5n, scale),
    approxLow: decimalString(min(ten - 5n, ten - abs), scale),
    approxHigh: decimalString(max(ten + 5n, ten + abs), scale),
  };
}

export function parseNumberSearchValue(code: string, text: string): NumberSearchValue {
  const { prefix, rest } = splitPrefix(code, text);
  return parseDecimal(code, prefix, rest);
}
