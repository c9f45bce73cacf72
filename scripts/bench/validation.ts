/**
 * Validation cost per resource: every resource of the Synthea bundles and every official
 * R4 example, each validated on its own (as the write path does).
 * Usage: tsx scripts/bench/validation.ts [--limit-bundles N] [--show-errors]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { isBlocking, validateResource, warmUpValidation } from '../../server/validation/validate-resource';
import { SHARED_DATA_DIR } from '../shared-data-dir';

const DATA = SHARED_DATA_DIR;
const args = process.argv.slice(2);
const limitIndex = args.indexOf('--limit-bundles');
const bundleLimit = limitIndex >= 0 ? Number(args[limitIndex + 1]) : Infinity;
const showErrors = args.includes('--show-errors');

function syntheaResources(): unknown[] {
  const dir = join(DATA, 'synthea');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json.gz'))
    .sort()
    .slice(0, bundleLimit);
  const resources: unknown[] = [];
  for (const file of files) {
    const bundle = JSON.parse(gunzipSync(readFileSync(join(dir, file))).toString('utf8')) as {
      entry?: { resource?: unknown }[];
    };
    for (const entry of bundle.entry ?? []) {
      resources.push(entry.resource);
    }
  }
  return resources;
}

function hl7Examples(): unknown[] {
  const dir = join(DATA, 'hl7-r4-examples');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as unknown);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

function measure(name: string, resources: unknown[]): void {
  const times: number[] = new Array(resources.length);
  let rejected = 0;
  const started = performance.now();
  for (let i = 0; i < resources.length; i++) {
    const t0 = performance.now();
    const issues = validateResource(resources[i]);
    times[i] = performance.now() - t0;
    if (issues.some(isBlocking)) {
      rejected++;
      if (showErrors) {
        const r = resources[i] as { resourceType?: string; id?: string };
        console.log(`  rejected ${r.resourceType}/${r.id}:`, issues.filter(isBlocking).map((x) => `${x.expression?.[0]}: ${x.diagnostics}`));
      }
    }
  }
  const total = performance.now() - started;
  const sorted = [...times].sort((a, b) => a - b);
  console.log(
    `${name}: ${resources.length} resources, ${rejected} rejected; ms/resource mean ${(total / resources.length).toFixed(4)}, ` +
      `p50 ${percentile(sorted, 50).toFixed(4)}, p99 ${percentile(sorted, 99).toFixed(4)}, max ${sorted[sorted.length - 1].toFixed(2)}`
  );
}

const warmStart = performance.now();
warmUpValidation();
console.log(`warm-up (schema compile on first use): ${(performance.now() - warmStart).toFixed(0)} ms`);

const synthea = syntheaResources();
const examples = hl7Examples();
// A first pass compiles every type the data uses; the second is the steady state a
// running server sees.
measure('synthea (first pass)', synthea);
measure('hl7-examples (first pass)', examples);
measure('synthea', synthea);
measure('hl7-examples', examples);
