import { extractIndexValues } from '../../server/search/extract-index-values';
import { resourceTypes } from '../../server/validation/structure-definitions';
import { loadSynthea } from '../../test/search/search-fixtures';

/**
 * `npm run bench:extraction`: µs per resource to compute every search column of a
 * Synthea resource (every write pays this). Bundles to use: BENCH_BUNDLES (default 10).
 */
const bundles = Number(process.env.BENCH_BUNDLES ?? 10);
const resources = loadSynthea(resourceTypes, bundles);
for (const r of resources) extractIndexValues(r); // compile each type's expressions once

const times: number[] = [];
for (let round = 0; round < 3; round++) {
  for (const r of resources) {
    const start = performance.now();
    extractIndexValues(r);
    times.push((performance.now() - start) * 1000);
  }
}
times.sort((a, b) => a - b);
const at = (q: number): string => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(1);
const mean = times.reduce((a, b) => a + b, 0) / times.length;
console.log(`index extraction over ${resources.length} Synthea resources × 3 rounds`);
console.log(`  mean ${mean.toFixed(1)} µs   p50 ${at(0.5)} µs   p99 ${at(0.99)} µs`);
