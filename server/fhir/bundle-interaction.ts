import { processBatch } from './batch';
import { readBundleRequest } from './bundle-entries';
import type { FhirHandler } from './fhir-request';
import { processTransaction } from './transaction';

/** POST [base] with a transaction or batch Bundle: https://hl7.org/fhir/R4/http.html#transaction */
export const transactionOrBatch: FhirHandler = async (req, ctx) => {
  const { type, entries } = readBundleRequest(req.body, ctx.config.bundleMaxEntries);
  const response = type === 'transaction' ? await processTransaction(entries, req, ctx) : await processBatch(entries, req, ctx);
  return { status: 200, resource: response };
};
