import { type BundleFile, type LoadPlan, readBundleFile, type SkippedFile } from './bundle-files';
import { type BundleResult, readBundleAnswer } from './bundle-result';
import { type FhirEndpoint, postBundle, UnreachableError } from './fhir-endpoint';
import { type LoadCounts, type LoadProgress, silentProgress } from './load-progress';

export interface LoadOptions {
  target: FhirEndpoint;
  /** Bundles in flight at once after the shared ones. */
  concurrency: number;
  progress?: LoadProgress;
}

export interface LoadSummary {
  /** Bundles sent or meant to be sent (the plan's shared + rest + invalid). */
  bundles: number;
  ok: number;
  /** Failed on the server or could not be read or sent (includes `notSent`). */
  failed: number;
  /** Never sent because the server became unreachable. */
  notSent: number;
  /** Entries answered 2xx. */
  resources: number;
  created: number;
  /** From the first request to the last answer. */
  seconds: number;
  failures: BundleResult[];
  skipped: SkippedFile[];
  /** Set when the load stopped early because the server could not be reached. */
  stoppedBecause?: string;
}

/**
 * Sends the plan's Bundles: the shared ones first, one at a time and in order (later ones
 * may refer to earlier ones, as Synthea's practitioner roles do to its hospitals), then the
 * rest with at most `concurrency` in flight. A Bundle that fails does not stop the others;
 * a server that cannot be reached does (every later Bundle would fail the same way).
 */
export async function loadBundles(plan: LoadPlan, options: LoadOptions): Promise<LoadSummary> {
  const progress = options.progress ?? silentProgress;
  const results: BundleResult[] = plan.invalid.map((file) => ({ name: file.name, ok: false, resources: 0, created: 0, reasons: [file.reason] }));
  const counts: LoadCounts = {
    total: plan.invalid.length + plan.shared.length + plan.rest.length,
    done: results.length,
    failed: results.length,
    resources: 0,
  };
  let stoppedBecause: string | undefined;
  const started = performance.now();
  progress.update(counts);
  results.forEach((result) => progress.failed(result));

  const send = async (file: BundleFile): Promise<void> => {
    const result = await sendFile(file, options.target).catch((err: unknown) => {
      if (err instanceof UnreachableError) {
        stoppedBecause ??= `the server at ${options.target.base} could not be reached: ${err.message}`;
      }
      return { name: file.name, ok: false, resources: 0, created: 0, reasons: [(err as Error).message] } satisfies BundleResult;
    });
    results.push(result);
    counts.done++;
    counts.resources += result.resources;
    if (!result.ok) {
      counts.failed++;
      progress.failed(result);
    }
    progress.update(counts);
  };

  for (const file of plan.shared) {
    if (stoppedBecause) break;
    await send(file);
  }
  const queue = [...plan.rest];
  const worker = async (): Promise<void> => {
    for (let file = queue.shift(); file && !stoppedBecause; file = queue.shift()) {
      await send(file);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, () => worker()));
  const seconds = (performance.now() - started) / 1000;
  progress.stop();

  const notSent = counts.total - counts.done;
  const failures = results.filter((r) => !r.ok);
  return {
    bundles: counts.total,
    ok: results.length - failures.length,
    failed: failures.length + notSent,
    notSent,
    resources: counts.resources,
    created: results.reduce((sum, r) => sum + r.created, 0),
    seconds,
    failures,
    skipped: plan.skipped,
    stoppedBecause,
  };
}

async function sendFile(file: BundleFile, target: FhirEndpoint): Promise<BundleResult> {
  let text: string;
  try {
    text = await readBundleFile(file.path);
  } catch (err) {
    return { name: file.name, ok: false, resources: 0, created: 0, reasons: [`cannot read: ${(err as Error).message}`] };
  }
  const answer = await postBundle(target, text);
  return readBundleAnswer(file.name, answer, text);
}
