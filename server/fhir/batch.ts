import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { isOperationOutcomeError, OperationOutcomeError, outcome, issue } from '../core/outcome';
import { entryError, entryLabel, parseEntryRequest } from './bundle-entries';
import { conditionalReferences, rewriteReferences } from './bundle-references';
import { resolveConditionalReferences } from './conditional-references';
import type { FhirContext, FhirRequest } from './fhir-request';
import { failedEntry, responseEntry, runEntry } from './run-entry';
import { PROCESSING_ORDER } from './transaction';

const NO_ENTRIES: ReadonlyMap<string, string> = new Map();

/**
 * A batch Bundle (https://hl7.org/fhir/R4/http.html#transaction): each entry on its own,
 * as if sent alone over HTTP (its own database transaction), in the transaction's order
 * of methods. A failing entry gets its status and OperationOutcome in `response` and
 * the others go on. Conditional references are resolved; references to other entries
 * are refused, since batch entries must not depend on one another.
 */
export async function processBatch(entries: BundleEntry[], req: FhirRequest, ctx: FhirContext): Promise<Bundle> {
  const prefer = { preferReturn: req.preferReturn, preferHandling: req.preferHandling };
  const results: BundleEntry[] = new Array(entries.length);
  const parsed = entries.map((entry, index) => {
    try {
      return parseEntryRequest(entry, index, ctx.baseUrl);
    } catch (err) {
      results[index] = failure(entryError(err, index, 'request'), ctx);
      return undefined;
    }
  });
  const order = parsed
    .filter((entry) => entry !== undefined)
    .sort((a, b) => PROCESSING_ORDER[a.method] - PROCESSING_ORDER[b.method] || a.index - b.index);
  for (const entry of order) {
    const at = `Bundle.entry[${entry.index}]`;
    try {
      if (entry.resource && entry.method !== 'PATCH') {
        const references = conditionalReferences(entry.resource);
        const conditional = references.size === 0 ? NO_ENTRIES : await resolveConditionalReferences(references, ctx.repo, NO_ENTRIES, () => at);
        rewriteReferences(entry.resource, NO_ENTRIES, conditional, at);
      }
      const res = await runEntry(entry, ctx, prefer);
      results[entry.index] = responseEntry(entry, res, req.preferReturn, ctx.baseUrl);
    } catch (err) {
      results[entry.index] = failure(entryError(err, entry.index, entryLabel(entry)), ctx);
    }
  }
  return { resourceType: 'Bundle', type: 'batch-response', entry: results };
}

/** An error that is not an OperationOutcome (a fault of the server) fails its entry as 500, not the batch. */
function failure(err: unknown, ctx: FhirContext): BundleEntry {
  if (isOperationOutcomeError(err)) {
    return failedEntry(err);
  }
  ctx.log?.error({ err }, 'batch entry failed');
  return failedEntry(new OperationOutcomeError(500, outcome([issue('error', 'exception', 'The server failed to process this entry')])));
}
