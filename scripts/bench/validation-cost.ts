import { isBlocking, validateResource } from '../../server/validation/validate-resource';
import { fmt, percentile } from './latency-stats';

export interface ValidationFigures {
  label: string;
  resources: number;
  rejected: number;
  mean: number;
  p50: number;
  p99: number;
}

/**
 * Milliseconds per resource for `validateResource`, in this process, as the write path
 * calls it (one resource at a time). One untimed pass compiles whatever the data uses;
 * timed passes then repeat until `minSeconds` have passed, so that small sets (the HL7
 * Patient examples) still give stable figures.
 */
export function measureValidation(label: string, resources: unknown[], minSeconds = 1): ValidationFigures {
  let rejected = 0;
  for (const resource of resources) {
    if (validateResource(resource).some(isBlocking)) {
      rejected++;
    }
  }
  const times: number[] = [];
  const started = performance.now();
  do {
    for (const resource of resources) {
      const t0 = performance.now();
      validateResource(resource);
      times.push(performance.now() - t0);
    }
  } while (performance.now() - started < minSeconds * 1000);
  const sorted = Float64Array.from(times).sort();
  const mean = sorted.reduce((sum, t) => sum + t, 0) / sorted.length;
  return { label, resources: resources.length, rejected, mean, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

export function printValidation(rows: ValidationFigures[]): void {
  console.log('\nValidation, ms per resource (in-process validateResource, steady state)');
  console.log(`${'resources'.padEnd(34)} ${'count'.padStart(6)} ${'rejected'.padStart(8)} ${'mean'.padStart(8)} ${'p50'.padStart(8)} ${'p99'.padStart(8)}`);
  for (const row of rows) {
    console.log(
      `${row.label.padEnd(34)} ${String(row.resources).padStart(6)} ${String(row.rejected).padStart(8)} ` +
        `${fmt3(row.mean)} ${fmt3(row.p50)} ${fmt3(row.p99)}`
    );
  }
}

function fmt3(value: number): string {
  return Number.isFinite(value) ? value.toFixed(3).padStart(8) : fmt(value);
}
