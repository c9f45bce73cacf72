import type { CellResult } from './latency-stats';

/** One operation of a worker; `iteration` counts that worker's calls from 0. */
export type Operation = (worker: number, iteration: number) => Promise<void>;

/**
 * Closed-loop load: `concurrency` workers each run `operation` back to back until the
 * deadline, so the offered load is "as fast as the system answers" at that concurrency.
 * A warm-up of the same shape runs first and is not counted (JIT, pools, sockets).
 */
export async function runClosedLoop(
  operation: Operation,
  concurrency: number,
  seconds: number,
  warmupSeconds: number,
  shouldStop: () => boolean = () => false
): Promise<CellResult> {
  if (warmupSeconds > 0) {
    await loop(operation, concurrency, warmupSeconds, shouldStop, 0);
  }
  // Warm-up iterations are skipped in the numbering so that workers that rotate
  // through a list continue where they were.
  return loop(operation, concurrency, seconds, shouldStop, 1_000_000);
}

async function loop(
  operation: Operation,
  concurrency: number,
  seconds: number,
  shouldStop: () => boolean,
  iterationOffset: number
): Promise<CellResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const worker = async (index: number): Promise<void> => {
    for (let i = iterationOffset; performance.now() < deadline && !shouldStop(); i++) {
      const t0 = performance.now();
      try {
        await operation(index, i);
        latencies.push(performance.now() - t0);
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, index) => worker(index)));
  const elapsed = (performance.now() - started) / 1000;
  return { operations: latencies.length, errors, seconds: elapsed, latencies, firstError };
}
