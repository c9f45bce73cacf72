/**
 * The statistics of R4's observation-statistics code system, over plain numbers
 * (Observation/$stats). Where the code system leaves the method open, the common
 * spreadsheet one: percentiles and quartiles by linear interpolation between closest
 * ranks (PERCENTILE.INC), variance and standard deviation of a sample (n − 1), skew and
 * kurtosis as sample skewness G1 and sample excess kurtosis G2 (SKEW, KURT).
 */
export const STATISTIC_CODES = [
  'average',
  'maximum',
  'minimum',
  'count',
  'total-count',
  'median',
  'std-dev',
  'sum',
  'variance',
  '20-percent',
  '80-percent',
  '4-lower',
  '4-upper',
  '4-dev',
  '5-1',
  '5-2',
  '5-3',
  '5-4',
  'skew',
  'kurtosis',
  'regression',
] as const;
export type StatisticCode = (typeof STATISTIC_CODES)[number];

/** A value, or why there is none: too few values, or a spread of zero where one is divided by. */
export type Outcome = { value: number } | { absent: 'not-applicable' | 'not-a-number' };

const PERCENTILES: Partial<Record<StatisticCode, number>> = {
  median: 0.5,
  '20-percent': 0.2,
  '80-percent': 0.8,
  '4-lower': 0.25,
  '4-upper': 0.75,
  '5-1': 0.2,
  '5-2': 0.4,
  '5-3': 0.6,
  '5-4': 0.8,
};

/** One statistic of `values` (at least one value; `count` and `total-count` are the caller's). */
export function statistic(code: Exclude<StatisticCode, 'count' | 'total-count' | 'regression'>, values: readonly number[]): Outcome {
  const n = values.length;
  const percentile = PERCENTILES[code];
  if (percentile !== undefined) return { value: percentileOf([...values].sort((a, b) => a - b), percentile) };
  switch (code) {
    case 'average':
      return { value: mean(values) };
    case 'sum':
      return { value: values.reduce((a, b) => a + b, 0) };
    case 'maximum':
      return { value: Math.max(...values) };
    case 'minimum':
      return { value: Math.min(...values) };
    case '4-dev': {
      const sorted = [...values].sort((a, b) => a - b);
      return { value: (percentileOf(sorted, 0.75) - percentileOf(sorted, 0.25)) / 2 };
    }
    case 'variance':
      return n < 2 ? { absent: 'not-applicable' } : { value: variance(values) };
    case 'std-dev':
      return n < 2 ? { absent: 'not-applicable' } : { value: Math.sqrt(variance(values)) };
    case 'skew': {
      if (n < 3) return { absent: 'not-applicable' };
      const z = standardized(values);
      if (!z) return { absent: 'not-a-number' };
      return { value: (n / ((n - 1) * (n - 2))) * z.reduce((a, v) => a + v ** 3, 0) };
    }
    case 'kurtosis': {
      if (n < 4) return { absent: 'not-applicable' };
      const z = standardized(values);
      if (!z) return { absent: 'not-a-number' };
      const fourth = z.reduce((a, v) => a + v ** 4, 0);
      return { value: ((n * (n + 1)) / ((n - 1) * (n - 2) * (n - 3))) * fourth - (3 * (n - 1) ** 2) / ((n - 2) * (n - 3)) };
    }
    default:
      return { absent: 'not-applicable' };
  }
}

/** Least squares of value over time: the change per hour, and the value the line gives at `origin`. */
export function regression(points: readonly { at: number; value: number }[], origin: number): { gradientPerHour: number; intercept: number } | undefined {
  if (points.length < 2) return undefined;
  const xs = points.map((p) => (p.at - origin) / 3_600_000);
  const ys = points.map((p) => p.value);
  const mx = mean(xs);
  const my = mean(ys);
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < xs.length; i++) {
    sxx += (xs[i] - mx) ** 2;
    sxy += (xs[i] - mx) * (ys[i] - my);
  }
  if (sxx === 0) return undefined;
  const gradientPerHour = sxy / sxx;
  return { gradientPerHour, intercept: my - gradientPerHour * mx };
}

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function variance(values: readonly number[]): number {
  const m = mean(values);
  return values.reduce((a, v) => a + (v - m) ** 2, 0) / (values.length - 1);
}

/** (x − mean) / sample standard deviation, or undefined when every value is the same. */
function standardized(values: readonly number[]): number[] | undefined {
  const m = mean(values);
  const s = Math.sqrt(variance(values));
  return s === 0 ? undefined : values.map((v) => (v - m) / s);
}

function percentileOf(sorted: readonly number[], p: number): number {
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  return lo + 1 < sorted.length ? sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]) : sorted[lo];
}
