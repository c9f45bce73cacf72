import type { Money, Quantity, Range, SampledData } from '@medplum/fhirtypes';
import type { TypedNode } from './compile-path-expression';

/**
 * One quantity as stored in a quantity parameter's jsonb array: the closed range
 * [v, w] it stands for (a plain Quantity is the point v = w; an absent bound is
 * open: -∞ / +∞) and its system, code and unit. Keeping the four together in one
 * element is what makes "value AND unit of the same Quantity" exact.
 *
 * - Quantity, SimpleQuantity, Age, Duration, Count, Distance: value, with `comparator`
 *   `<`/`<=` as (-∞, value] and `>`/`>=` as [value, +∞);
 * - Money: value with currency as the code, system urn:iso:std:iso:4217;
 * - Range: [low.value, high.value], unit from low (else high);
 * - SampledData: the range of its decoded values (origin + factor × data), unit of origin.
 * UCUM canonicalisation is not done: `1 g` does not match `1000 mg`.
 */
export interface StoredQuantity {
  v?: number;
  w?: number;
  s?: string;
  c?: string;
  u?: string;
}

export const CURRENCY_SYSTEM = 'urn:iso:std:iso:4217';

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function withUnit(q: StoredQuantity, source: Quantity | undefined): StoredQuantity {
  const s = text(source?.system);
  const c = text(source?.code);
  const u = text(source?.unit);
  if (s) q.s = s;
  if (c) q.c = c;
  if (u) q.u = u;
  return q;
}

function fromQuantity(q: Quantity): StoredQuantity | undefined {
  const value = finite(q.value);
  if (value === undefined) return undefined;
  const comparator = q.comparator;
  const stored: StoredQuantity =
    comparator === '<' || comparator === '<=' ? { w: value } : comparator === '>' || comparator === '>=' ? { v: value } : { v: value, w: value };
  return withUnit(stored, q);
}

function fromRange(r: Range): StoredQuantity | undefined {
  const low = finite(r.low?.value);
  const high = finite(r.high?.value);
  if (low === undefined && high === undefined) return undefined;
  const stored: StoredQuantity = {};
  if (low !== undefined) stored.v = low;
  if (high !== undefined) stored.w = high;
  return withUnit(stored, low !== undefined ? r.low : r.high);
}

function fromSampledData(d: SampledData): StoredQuantity | undefined {
  const origin = finite(d.origin?.value);
  if (origin === undefined || typeof d.data !== 'string') return undefined;
  const factor = finite(d.factor) ?? 1;
  let lo = Infinity;
  let hi = -Infinity;
  for (const item of d.data.split(' ')) {
    if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(item)) continue; // E, L, U: no value
    const v = Number((origin + factor * Number(item)).toPrecision(15));
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return lo <= hi ? withUnit({ v: lo, w: hi }, d.origin) : undefined;
}

export function storedQuantity(node: TypedNode): StoredQuantity | undefined {
  const value = node.value;
  if (!value || typeof value !== 'object') return undefined;
  switch (node.type) {
    case 'Range':
      return fromRange(value as Range);
    case 'SampledData':
      return fromSampledData(value as SampledData);
    case 'Money': {
      const money = value as Money;
      const v = finite(money.value);
      if (v === undefined) return undefined;
      const currency = text(money.currency);
      return currency ? { v, w: v, s: CURRENCY_SYSTEM, c: currency } : { v, w: v };
    }
    default:
      return fromQuantity(value as Quantity);
  }
}

export function quantityIndexValues(nodes: readonly TypedNode[]): StoredQuantity[] | null {
  const out: StoredQuantity[] = [];
  for (const node of nodes) {
    const q = storedQuantity(node);
    if (q) out.push(q);
  }
  return out.length > 0 ? out : null;
}
