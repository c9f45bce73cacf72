import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { isOperationOutcomeError, OperationOutcomeError, outcome, issue } from '../core/outcome';
import { carriesReferences, entryError, entryLabel, type EntryRequest, parseEntryRequest } from './bundle-entries';
import { conditionalReferences, rewriteReferences } from './bundle-references';
import { resolveConditionalReferences } from './conditional-references';
import type { FhirContext, FhirRequest } from './fhir-request';
import { failedEntry, responseEntry, runEntry } from './run-entry';
import { PROCESSING_ORDER } from './transaction';
import { nonEmpty } from '../core/non-empty';

const NO_ENTRIES: ReadonlyMap<string, string> = new Map();

/** Batch entries of one method in flight at once. */
const BATCH_CONCURRENCY = 4;

/**
 * A batch Bundle (https://hl7.org/fhir/R4/http.html#transaction): each entry on its own,
 * as if sent alone over HTTP (its own database transaction), in the transaction's order
 * of methods. A failing entry gets its status and OperationOutcome in `response` and
 * the others go on. Conditional references are resolved; references to other entries
 * are refused, since batch entries must not depend on one another.
 */
export async function processBatch(bundleEntries: BundleEntry[], req: FhirRequest, ctx: FhirContext): Promise<Bundle> {
  const prefer = { preferReturn: req.preferReturn, preferHandling: req.preferHandling };
  const results: BundleEntry[] = new Array(bundleEntries.length);
  const parsed = bundleEntries.map((entry, index) => {
    try {
      return parseEntryRequest(entry, index, ctx.baseUrl);
    } catch (err) {
      results[index] = failure(entryError(err, index, 'request'), ctx);
      return undefined;
    }
  });
  const entries = parsed.filter((entry) => entry !== undefined);
  const runOne = async (entry: EntryRequest): Promise<void> => {
    const at = `Bundle.entry[${entry.index}]`;
    try {
      if (entry.resource && carriesReferences(entry)) {
        const references = conditionalReferences(entry.resource);
        const conditional = references.size === 0 ? NO_ENTRIES : await resolveConditionalReferences(references, ctx.repo, NO_ENTRIES, () => at);
        rewriteReferences(entry.resource, NO_ENTRIES, conditional, at);
      }
      const res = await runEntry(entry, ctx, prefer);
      results[entry.index] = responseEntry(entry, res, req.preferReturn, ctx.baseUrl);
    } catch (err) {
      results[entry.index] = failure(entryError(err, entry.index, entryLabel(entry)), ctx);
    }
  };
  // The transaction's order of methods; within one method, entries are independent
  // (http.html#brules: "the order of execution should not matter"), so a few run at once,
  // each in its own database transaction.
  for (const rank of [...new Set(entries.map((e) => PROCESSING_ORDER[e.method]))].sort()) {
    const queue = entries.filter((e) => PROCESSING_ORDER[e.method] === rank);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < queue.length) await runOne(queue[next++]);
    };
    await Promise.all(Array.from({ length: Math.min(BATCH_CONCURRENCY, queue.length) }, worker));
  }
  return { resourceType: 'Bundle', type: 'batch-response', ...nonEmpty('entry', results) };
}

/** An error that is not an OperationOutcome (a fault of the server) fails its entry as 500, not the batch. */
function failure(err: unknown, ctx: FhirContext): BundleEntry {
  if (isOperationOutcomeError(err)) {
    return failedEntry(err);
  }
  ctx.log?.error({ err }, 'batch entry failed');
  return failedEntry(new OperationOutcomeError(500, outcome([issue('error', 'exception', 'The server failed to process this entry')])));
}
