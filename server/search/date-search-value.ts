import { badRequest } from '../core/outcome';
import type { DatePrefix, DateSearchValue } from './search-request';
import { restoreTimeZonePlus } from '../core/date-range';

/**
 * Parses a date search value (`ge2020-03`, `2020-03-01T10:00:00+02:00`) into the range it
 * stands for (R4 search.html#date): a partial date covers its whole year / month / day,
 * a time its minute / second / fraction. Values without a time zone are taken as UTC
 * (the server's zone), the same way stored dates are indexed.
 */
const PREFIXES: ReadonlySet<string> = new Set(['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']);

const DATE_PATTERN =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

function daysInMonth(year: number, month: number): number {
  // Day 0 of the next month is the last day of this one; 2001 is not a leap year.
  return new Date(Date.UTC(2001, month, 0)).getUTCDate() + (month === 2 && isLeap(year) ? 1 : 0);
}

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** A UTC instant; setUTCFullYear avoids Date.UTC mapping years 0–99 to 1900–1999. */
function utc(year: number, month: number, day: number, hour = 0, minute = 0, second = 0, ms = 0): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, ms);
  return d.getTime();
}

/** ISO instant for PostgreSQL; beyond year 9999 the range is open. */
export function toPgInstant(epochMs: number): string {
  return new Date(epochMs).getUTCFullYear() > 9999 ? 'infinity' : new Date(epochMs).toISOString();
}

export interface DateRange {
  /** Inclusive start, epoch ms. */
  start: number;
  /** Exclusive end, epoch ms. */
  end: number;
}

/** The range of a FHIR date / dateTime / instant string; undefined when it is not one. */
export function dateRange(text: string): DateRange | undefined {
  const m = DATE_PATTERN.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const year = Number(y);
  const month = mo === undefined ? 1 : Number(mo);
  const day = d === undefined ? 1 : Number(d);
  const hour = h === undefined ? 0 : Number(h);
  const minute = mi === undefined ? 0 : Number(mi);
  const second = s === undefined ? 0 : Number(s);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (tz && tz !== 'Z') {
    const oh = Number(tz.slice(1, 3));
    const om = Number(tz.slice(4, 6));
    if (oh > 14 || om > 59) return undefined;
    offsetMinutes = (tz[0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const ms = frac === undefined ? 0 : Number(frac.slice(0, 3).padEnd(3, '0'));
  const local = utc(year, month, day, hour, minute, second, ms);
  const start = local - offsetMinutes * 60_000;
  let end: number;
  if (mo === undefined) end = utc(year + 1, 1, 1);
  else if (d === undefined) end = utc(month === 12 ? year + 1 : year, month === 12 ? 1 : month + 1, 1);
  else if (h === undefined) end = utc(year, month, day) + 86_400_000;
  else if (s === undefined) end = start + 60_000;
  else if (frac === undefined) end = start + 1000;
  else end = start + Math.max(1, 10 ** (3 - Math.min(frac.length, 3)));
  return { start, end };
}

export function parseDateSearchValue(code: string, raw: string): DateSearchValue {
  let prefix: DatePrefix = 'eq';
  let text = raw;
  if (/^[a-z]{2}/.test(raw)) {
    const candidate = raw.slice(0, 2);
    if (!PREFIXES.has(candidate)) throw badRequest(`Unknown prefix '${candidate}' in ${code}=${raw}`, code);
    prefix = candidate as DatePrefix;
    text = raw.slice(2);
  }
  const range = dateRange(restoreTimeZonePlus(text));
  if (!range) throw badRequest(`Invalid date '${text}' in ${code}=${raw}`, code);
  return { prefix, start: toPgInstant(range.start), end: toPgInstant(range.end) };
}
