import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** HL7's official R4 examples, read at run time from ../shared/data. */
export const HL7_EXAMPLES_DIR = join(__dirname, '../../../shared/data/hl7-r4-examples');

/** Examples the validator rightly rejects, with the reason; every other example must pass. */
export const INVALID_HL7_EXAMPLES: Record<string, string> = {
  'Questionnaire-qs1.json':
    'the example omits Questionnaire.item.linkId (min 1 in R4) on nested items; it is invalid as published ' +
    '(@medplum/core rejects it too; the Java validator misses it on items reached through contentReference)',
};

/**
 * HL7's example SearchParameters are draft, so this server would apply them as search
 * parameters, and refuses them as definitions it cannot apply (see
 * search/custom-search-parameter-definitions.ts): status and reason.
 */
export const UNAPPLICABLE_HL7_SEARCH_PARAMETERS: Record<string, [number, string]> = {
  'SearchParameter-example.json': [400, 'code _id: codes starting with _ are reserved by the spec, and _id is built in'],
  'SearchParameter-example-reference.json': [422, 'subject is an official parameter of Condition; a custom one cannot replace it'],
  'SearchParameter-example-extension.json': [422, 'base Patient, but its expression starts at DocumentReference: it selects nothing from Patient'],
};

export function hl7ExampleFiles(): string[] {
  return readdirSync(HL7_EXAMPLES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort();
}

export function readHl7Example(file: string): Record<string, any> {
  return JSON.parse(readFileSync(join(HL7_EXAMPLES_DIR, file), 'utf8'));
}
