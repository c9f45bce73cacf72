/** Latency samples of one benchmark cell and the figures printed from them. */
export interface CellResult {
  operations: number;
  errors: number;
  seconds: number;
  /** Milliseconds per successful operation. */
  latencies: number[];
  firstError?: string;
}

export interface CellFigures {
  perSecond: number;
  p50: number;
  p99: number;
  mean: number;
  errors: number;
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) {
    return NaN;
  }
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

export function figures(result: CellResult): CellFigures {
  const sorted = Float64Array.from(result.latencies).sort();
  let sum = 0;
  for (const value of sorted) {
    sum += value;
  }
  return {
    perSecond: result.operations / result.seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: sorted.length ? sum / sorted.length : NaN,
    errors: result.errors,
  };
}

/** Fixed-width number for the tables: 0.123, 12.3, 1234. */
export function fmt(value: number, width = 8): string {
  if (!Number.isFinite(value)) {
    return '-'.padStart(width);
  }
  const text = value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
  return text.padStart(width);
}
