import type { CodeableConcept, Coding, Observation, ObservationComponent, Parameters, ParametersParameter, Period, Quantity } from '@medplum/fhirtypes';
import { parseDateRange } from '../core/date-range';
import { badRequest } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { searchByValues, searchEveryPage } from '../storage/search-every-page';
import { OperationInput } from './operation-parameters';
import { observationTime } from './observation-time';
import { regression, statistic, STATISTIC_CODES, type Outcome, type StatisticCode } from './statistics';

const STATISTICS_SYSTEM = 'http://terminology.hl7.org/CodeSystem/observation-statistics';
const DATA_ABSENT_SYSTEM = 'http://terminology.hl7.org/CodeSystem/data-absent-reason';
const UCUM = 'http://unitsofmeasure.org';
const DISPLAY: Record<StatisticCode, string> = {
  average: 'Average',
  maximum: 'Maximum',
  minimum: 'Minimum',
  count: 'Count',
  'total-count': 'Total Count',
  median: 'Median',
  'std-dev': 'Standard Deviation',
  sum: 'Sum',
  variance: 'Variance',
  '20-percent': '20th Percentile',
  '80-percent': '80th Percentile',
  '4-lower': 'Lower Quartile',
  '4-upper': 'Upper Quartile',
  '4-dev': 'Quartile Deviation',
  '5-1': '1st Quintile',
  '5-2': '2nd Quintile',
  '5-3': '3rd Quintile',
  '5-4': '4th Quintile',
  skew: 'Skew',
  kurtosis: 'Kurtosis',
  regression: 'Regression',
};
/** Statistics with no unit of their own: a ratio or a shape. */
const DIMENSIONLESS = new Set<StatisticCode>(['skew', 'kurtosis']);

/** One measurement of a code: its value when it is a valid UCUM quantity, and when it was made. */
interface Measurement {
  quantity?: Quantity & { value: number; code: string };
  at?: number;
}

/** The measurements of one code, in the order found. */
interface Series {
  coding: Coding;
  measurements: Measurement[];
}

/**
 * `GET|POST Observation/$stats` (R4 observation-operation-stats): statistics over the
 * UCUM `valueQuantity` of one subject's Observations of the codes asked for (`code` with
 * `system`, or `coding`), in `Observation.code` or `Observation.component.code`, within
 * `duration` hours before now or `period` (by effective[x]: a dateTime or instant, a
 * Period's end, else its start), entered-in-error left out. A panel asked for (an
 * Observation of that code with components or `hasMember`) gives the statistics of each
 * of its parts, by the part's code. The answer is a Parameters: one `statistics`
 * Observation per code (status final, the subject, the period, one component per
 * statistic asked for, with the code system's code), and with `include=true` the
 * `source` Observations, the most recent `limit` of them.
 *
 * Valid values are quantities with a UCUM code and no comparator, on an Observation
 * without modifier extensions; of one code, those in its most frequent unit (units are
 * not converted). `count` is how many were used, `total-count` every measurement of the
 * code. A statistic that cannot be computed (a variance of one value, a skew of equal
 * values) is a component with a dataAbsentReason. `regression` is two components: the
 * change per hour, and the line's value at the start of the period.
 * Everything is read through the caller's store: only what the caller may read counts.
 */
export const observationStats: FhirHandler = async (req, ctx) => {
  const input = OperationInput.of('stats', req.body, req.query);
  const subject = subjectReference(input.requiredString('subject'), ctx.baseUrl);
  const system = input.string('system');
  const codes = input.strings('code').flatMap((c) => c.split(',')).map((c) => c.trim()).filter(Boolean);
  if (codes.length > 0 && !system) throw badRequest('$stats: a code needs its system (or use coding=system|code)', 'system');
  const asked: Coding[] = [...codes.map((code) => ({ system, code })), ...input.codings('coding')];
  if (asked.length === 0) throw badRequest('$stats needs the codes to compute statistics for: code with system, or coding', 'code');
  for (const c of asked) if (!c.system || !c.code) throw badRequest('$stats: every coding needs a system and a code', 'coding');
  const statistics = input.strings('statistic').flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  if (statistics.length === 0) throw badRequest(`$stats needs at least one statistic (${STATISTIC_CODES.join(', ')})`, 'statistic');
  for (const s of statistics) if (!(STATISTIC_CODES as readonly string[]).includes(s)) throw badRequest(`$stats: unknown statistic '${s}'; the codes are ${STATISTIC_CODES.join(', ')}`, 'statistic');
  const window = timeWindow(input.decimal('duration'), input.period('period'));
  const include = input.boolean('include') ?? false;
  const limit = input.positiveInteger('limit');

  // 404 for an unknown subject, 403 for one the caller may not read.
  const [subjectType, subjectId] = subject.split('/');
  await ctx.repo.read(subjectType, subjectId);

  const wanted = new Set(asked.map(key));
  const query: Record<string, string | string[]> = { subject, 'combo-code': [...wanted].join(',') };
  if (window.start !== undefined || window.end !== undefined) {
    query.date = [...(window.start !== undefined ? [`ge${new Date(window.start).toISOString()}`] : []), ...(window.end !== undefined ? [`le${new Date(window.end).toISOString()}`] : [])];
  }
  const found = (await searchEveryPage<Observation>(ctx.repo, 'Observation', query)).filter((o) => counts(o, window));
  const memberIds = found.filter((o) => matches(o.code, wanted)).flatMap((o) => (o.hasMember ?? []).map((m) => /^Observation\/([^/]+)$/.exec(m.reference ?? '')?.[1]).filter((id): id is string => id !== undefined));
  const members = memberIds.length > 0 ? (await searchByValues<Observation>(ctx.repo, 'Observation', '_id', memberIds)).filter((o) => o.subject?.reference === subject && counts(o, window)) : [];

  const series = new Map<string, Series>();
  const add = (coding: Coding, measurement: Measurement): void => {
    const k = key(coding);
    let s = series.get(k);
    if (!s) series.set(k, (s = { coding: { system: coding.system, code: coding.code, ...(coding.display ? { display: coding.display } : {}) }, measurements: [] }));
    s.measurements.push(measurement);
  };
  const sources = new Map<string, Observation>();
  for (const o of found) {
    const at = observationTime(o);
    const usable = !o.modifierExtension?.length;
    const own = firstMatch(o.code, wanted);
    if (own) {
      const isPanel = (o.component?.length ?? 0) > 0 || (o.hasMember?.length ?? 0) > 0;
      if (!isPanel || o.valueQuantity) add(own, { quantity: usable ? validQuantity(o.valueQuantity) : undefined, at });
      // A panel: each of its components by its own code.
      if (isPanel) for (const c of o.component ?? []) if (c.code?.coding?.[0]) add(c.code.coding[0], componentMeasurement(c, usable, at));
      sources.set(o.id as string, o);
    } else {
      for (const c of o.component ?? []) {
        const part = firstMatch(c.code, wanted);
        if (part) {
          add(part, componentMeasurement(c, usable, at));
          sources.set(o.id as string, o);
        }
      }
    }
  }
  for (const m of members) {
    const coding = m.code?.coding?.find((c) => c.code);
    if (!coding) continue;
    add(coding, { quantity: m.modifierExtension?.length ? undefined : validQuantity(m.valueQuantity), at: observationTime(m) });
    sources.set(m.id as string, m);
  }
  // Every code asked for is answered (a panel by its parts), with a count of 0 when nothing was found.
  for (const c of asked) if (!series.has(key(c)) && !panelAnswered(c, found)) series.set(key(c), { coding: { system: c.system, code: c.code }, measurements: [] });

  const parameter: ParametersParameter[] = [...series.values()].map((s) => ({
    name: 'statistics',
    resource: statisticsObservation(s, subject, window, statistics as StatisticCode[]),
  }));
  if (include) {
    const newestFirst = [...sources.values()].sort((a, b) => (observationTime(b) ?? -Infinity) - (observationTime(a) ?? -Infinity));
    for (const o of limit === undefined ? newestFirst : newestFirst.slice(0, limit)) parameter.push({ name: 'source', resource: o });
  }
  const answer: Parameters = { resourceType: 'Parameters', parameter };
  return { status: 200, resource: answer };
};

/** `Patient/123`, or an absolute URL of this server; servers only compute stats on their own observations. */
function subjectReference(given: string, baseUrl: string): string {
  const relative = given.startsWith(`${baseUrl}/`) ? given.slice(baseUrl.length + 1) : given;
  if (!/^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(relative)) {
    throw badRequest(`$stats: subject must be a reference to a resource on this server (Patient/123), got "${given}"`, 'subject');
  }
  return relative;
}

/** A time range in ms, both ends included, and the Period it was given as. */
interface TimeWindow {
  start?: number;
  end?: number;
  given?: Period;
}

/** The last `duration` hours, or the period (an end given as a date covers that whole day). */
function timeWindow(duration: number | undefined, period: Period | undefined): TimeWindow {
  if (duration !== undefined && period) throw badRequest('$stats takes duration or period, not both', 'period');
  if (duration !== undefined) {
    if (!(duration > 0)) throw badRequest('$stats: duration must be a number of hours above 0', 'duration');
    const now = Date.now();
    return { start: now - duration * 3_600_000, end: now };
  }
  if (!period) return {};
  const start = period.start === undefined ? undefined : parseDateRange(period.start)?.start.getTime();
  const end = period.end === undefined ? undefined : parseDateRange(period.end)?.end.getTime();
  if ((period.start !== undefined && start === undefined) || (period.end !== undefined && end === undefined)) throw badRequest('$stats: period has a malformed date', 'period');
  return { start, end: end === undefined ? undefined : end - 1, given: period };
}

/** Counted: not entered in error, and made within the window (an Observation without a time only when there is no window). */
function counts(o: Observation, window: TimeWindow): boolean {
  if (o.status === 'entered-in-error') return false;
  if (window.start === undefined && window.end === undefined) return true;
  const at = observationTime(o);
  return at !== undefined && (window.start === undefined || at >= window.start) && (window.end === undefined || at <= window.end);
}

function key(c: Coding): string {
  return `${c.system ?? ''}|${c.code ?? ''}`;
}

function firstMatch(concept: CodeableConcept | undefined, wanted: ReadonlySet<string>): Coding | undefined {
  return concept?.coding?.find((c) => wanted.has(key(c)));
}

function matches(concept: CodeableConcept | undefined, wanted: ReadonlySet<string>): boolean {
  return firstMatch(concept, wanted) !== undefined;
}

/** A code asked for that named only panels: its parts answer for it. */
function panelAnswered(c: Coding, found: readonly Observation[]): boolean {
  return found.some((o) => matches(o.code, new Set([key(c)])) && ((o.component?.length ?? 0) > 0 || (o.hasMember?.length ?? 0) > 0));
}

function componentMeasurement(c: ObservationComponent, usable: boolean, at: number | undefined): Measurement {
  return { quantity: usable ? validQuantity(c.valueQuantity) : undefined, at };
}

function validQuantity(q: Quantity | undefined): Measurement['quantity'] {
  if (!q || typeof q.value !== 'number' || q.system !== UCUM || !q.code || q.comparator) return undefined;
  return q as Measurement['quantity'];
}

function statisticsObservation(s: Series, subject: string, window: TimeWindow, asked: readonly StatisticCode[]): Observation {
  const unitCounts = new Map<string, number>();
  for (const m of s.measurements) if (m.quantity) unitCounts.set(m.quantity.code, (unitCounts.get(m.quantity.code) ?? 0) + 1);
  // The most frequent unit (the first found among equals): values in others are not converted, so not used.
  const unit = [...unitCounts.entries()].reduce<[string, number] | undefined>((best, e) => (!best || e[1] > best[1] ? e : best), undefined)?.[0];
  const used = s.measurements.filter((m) => m.quantity && m.quantity.code === unit);
  const values = used.map((m) => m.quantity?.value as number);
  const sample = used[0]?.quantity;
  const times = s.measurements.map((m) => m.at).filter((t): t is number => t !== undefined);
  const start = window.start ?? (times.length > 0 ? Math.min(...times) : undefined);
  const end = window.end ?? (times.length > 0 ? Math.max(...times) : undefined);
  const quantity = (value: number, code = sample?.code, unitText = sample?.unit ?? sample?.code): Quantity => ({
    value: Number(value.toPrecision(12)),
    ...(unitText ? { unit: unitText } : {}),
    ...(code ? { system: UCUM, code } : {}),
  });
  const component: ObservationComponent[] = [];
  const conceptOf = (code: StatisticCode, text?: string): CodeableConcept => ({ coding: [{ system: STATISTICS_SYSTEM, code, display: DISPLAY[code] }], ...(text ? { text } : {}) });
  const absent = (code: StatisticCode, reason: string, text?: string): ObservationComponent => ({
    code: conceptOf(code, text),
    dataAbsentReason: { coding: [{ system: DATA_ABSENT_SYSTEM, code: reason }] },
  });
  for (const code of asked) {
    if (code === 'count') component.push({ code: conceptOf(code), valueInteger: values.length });
    else if (code === 'total-count') component.push({ code: conceptOf(code), valueInteger: s.measurements.length });
    else if (code === 'regression') {
      const points = used.filter((m) => m.at !== undefined).map((m) => ({ at: m.at as number, value: m.quantity?.value as number }));
      const line = start === undefined ? undefined : regression(points, start);
      if (!line) {
        component.push(absent(code, 'not-applicable', 'gradient per hour'), absent(code, 'not-applicable', 'intercept at the start of the period'));
      } else {
        component.push(
          { code: conceptOf(code, 'gradient per hour'), valueQuantity: quantity(line.gradientPerHour, sample && `${sample.code}/h`, sample && `${sample.unit ?? sample.code}/h`) },
          { code: conceptOf(code, 'intercept at the start of the period'), valueQuantity: quantity(line.intercept) }
        );
      }
    } else if (values.length === 0) component.push(absent(code, 'not-applicable'));
    else {
      const outcome: Outcome = statistic(code, values);
      if ('absent' in outcome) component.push(absent(code, outcome.absent));
      else if (DIMENSIONLESS.has(code)) component.push({ code: conceptOf(code), valueQuantity: quantity(outcome.value, '1', '1') });
      // A variance is in the unit squared, which UCUM cannot always write (mm[Hg]²): the unit as text alone.
      else if (code === 'variance') component.push({ code: conceptOf(code), valueQuantity: { value: Number(outcome.value.toPrecision(12)), ...(sample ? { unit: `(${sample.unit ?? sample.code})²` } : {}) } });
      else component.push({ code: conceptOf(code), valueQuantity: quantity(outcome.value) });
    }
  }
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [s.coding] },
    subject: { reference: subject },
    ...(window.given
      ? { effectivePeriod: { ...(window.given.start ? { start: window.given.start } : {}), ...(window.given.end ? { end: window.given.end } : {}) } }
      : start !== undefined || end !== undefined
      ? { effectivePeriod: { ...(start !== undefined ? { start: new Date(start).toISOString() } : {}), ...(end !== undefined ? { end: new Date(end).toISOString() } : {}) } }
      : {}),
    component,
  };
}
