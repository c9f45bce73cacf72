import path from 'node:path';

/**
 * The test data nobody here wrote (HL7's R4 examples, Synthea bundles, the validator's
 * cases): `SHARED_DATA_DIR` when set, otherwise `../shared/data` beside the checkout.
 * Tests and benchmarks read it at run time; it is never copied into the repository.
 */
export const SHARED_DATA_DIR = process.env.SHARED_DATA_DIR ? path.resolve(process.env.SHARED_DATA_DIR) : path.join(__dirname, '..', '..', 'shared', 'data');
