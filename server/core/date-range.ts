/**
 * FHIR date, dateTime and instant values as the half-open range of instants they
 * denote: "2020" is all of 2020, "2020-03-04T10:00:00Z" is one second.
 * https://hl7.org/fhir/R4/search.html#date
 */
export interface DateRange {
  start: Date;
  /** Exclusive. */
  end: Date;
}

const DATE_TIME =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

export function parseDateRange(value: string): DateRange | undefined {
  const m = DATE_TIME.exec(value);
  if (!m) {
    return undefined;
  }
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y);
  const month = mo === undefined ? undefined : Number(mo);
  const day = d === undefined ? undefined : Number(d);
  if (month !== undefined && (month < 1 || month > 12)) {
    return undefined;
  }
  if (day !== undefined && (day < 1 || day > daysInMonth(year, month as number))) {
    return undefined;
  }
  if (h !== undefined && (Number(h) > 23 || Number(mi) > 59 || (s !== undefined && Number(s) > 59))) {
    return undefined;
  }
  if (month === undefined) {
    return { start: utc(year, 0, 1), end: utc(year + 1, 0, 1) };
  }
  if (day === undefined) {
    return { start: utc(year, month - 1, 1), end: utc(year, month, 1) };
  }
  if (h === undefined) {
    return { start: utc(year, month - 1, day), end: utc(year, month - 1, day + 1) };
  }
  // A time without a zone is ambiguous; FHIR requires one on dateTime with time, so
  // treat a missing zone as UTC rather than the server's local zone.
  const offsetMinutes = zoneOffsetMinutes(zone ?? 'Z');
  const base = Date.UTC(year, month - 1, day, Number(h), Number(mi), s === undefined ? 0 : Number(s));
  const ms = frac === undefined ? 0 : Number(`0.${frac}`) * 1000;
  const start = new Date(base + Math.floor(ms) - offsetMinutes * 60000);
  const unit = s === undefined ? 60000 : frac === undefined ? 1000 : Math.max(1, 10 ** (3 - frac.length));
  return { start, end: new Date(start.getTime() + unit) };
}

function utc(year: number, monthIndex: number, day: number): Date {
  return new Date(Date.UTC(year, monthIndex, day));
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function zoneOffsetMinutes(zone: string): number {
  if (zone === 'Z') {
    return 0;
  }
  const sign = zone[0] === '-' ? -1 : 1;
  return sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
}

/**
 * A '+' that a client left unencoded in a query string arrives as a space (form
 * encoding), so `2021-05-01T10:00:00+02:00` reads as `…T10:00:00 02:00`. A space is
 * never valid in a date, so a time zone after one is read back as '+' (as HAPI does).
 */
export function restoreTimeZonePlus(value: string): string {
  return /T[0-9:.]+ [0-9]{2}:[0-9]{2}$/.test(value) ? `${value.slice(0, -6)}+${value.slice(-5)}` : value;
}
