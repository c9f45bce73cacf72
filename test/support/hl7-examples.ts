import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SHARED_DATA_DIR } from '../../scripts/shared-data-dir';

/** HL7's official R4 examples, read at run time from ../shared/data. */
export const HL7_EXAMPLES_DIR = join(SHARED_DATA_DIR, 'hl7-r4-examples');

/** Examples the validator rightly rejects, with the reason; every other example must pass. */
export const INVALID_HL7_EXAMPLES: Record<string, string> = {
  'Questionnaire-qs1.json':
    'the example omits Questionnaire.item.linkId (min 1 in R4) on nested items; it is invalid as published ' +
    '(@medplum/core rejects it too; the Java validator misses it on items reached through contentReference)',
};

export function hl7ExampleFiles(): string[] {
  return readdirSync(HL7_EXAMPLES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort();
}

export function readHl7Example(file: string): Record<string, any> {
  return JSON.parse(readFileSync(join(HL7_EXAMPLES_DIR, file), 'utf8'));
}
