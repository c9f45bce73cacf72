import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isBlocking, validateResource } from '../../server/validation/validate-resource';
import { claimedProfileIssues } from '../../server/validation/claimed-profiles';
import type { ValidationOptions } from '../../server/validation/validate-resource';
import { SHARED_DATA_DIR } from '../../scripts/shared-data-dir';

/**
 * The HL7 Java validator's own R4 test cases (../shared/data/validator-cases): how often
 * our verdict (valid / invalid) matches the reference validator's.
 */

const DIR = join(SHARED_DATA_DIR, 'validator-cases');

interface ValidatorCase {
  name: string;
  file: string;
  expected_valid: boolean;
  errors_need_only_structure_or_reference_checks: boolean;
  validator_options?: Record<string, unknown>;
}

/** Every case we knowingly disagree with, and why. The test fails if one starts agreeing. */
const disagreements: Record<string, string> = {
  'dr-example-org': 'Java policy "examples: false" (no example.org URLs); not an R4 rule',
  'pat-example-extensions': 'Java policy "examples: false" and an extension definition the server does not have',
  capstmt: 'needs the SearchParameter registry to compare declared search parameter types (CapabilityStatement semantics)',
  'pat-dob-ext': 'unknown extension URL: the server accepts extensions it has no definition for (R4 allows any extension)',
  'nested-questionnaire-nested-valueset': 'unknown extension URL (SDC); extensions without a definition are accepted',
  'obs-mz': 'needs snapshot generation of the StructureDefinition being validated',
  'bundle-id-3': 'search-result checks need the search URL parsed against search parameters (Java-only) plus a terminology display check',
  'bundle-id-4': 'search-result and OperationOutcome-mode checks need search URL semantics, plus a terminology display check',
  'bundle-id-5': 'only error is a wrong display name: needs a CVX terminology server',
  'bundle-with-contained': 'wrong display names (LOINC, NCI) and narrative hyperlink resolution: needs a terminology server',
  'uk-msg': 'wrong display names / unknown SNOMED CT codes: needs a terminology server',
};

function optionsFor(c: ValidatorCase): ValidationOptions {
  const o = c.validator_options ?? {};
  return {
    securityChecks: o['security-checks'] === true,
    noHtmlInMarkdown: o.noHtmlInMarkdown === true,
    validateContained: o.validateContains !== 'IGNORE',
    validateReference: typeof o.validateReference === 'string' ? o.validateReference : undefined,
  };
}

function verdict(c: ValidatorCase): { valid: boolean; errors: string[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(join(DIR, c.file), 'utf8'));
  } catch (err) {
    return { valid: false, errors: [`malformed JSON: ${(err as Error).message}`] };
  }
  // As HL7's validator: the base definitions, then the R4 profiles claimed or required (vital signs).
  const errors = [...validateResource(parsed, optionsFor(c)), ...claimedProfileIssues(parsed, { vitalSigns: true })]
    .filter(isBlocking)
    .map((i) => `${i.expression?.[0]}: ${i.diagnostics}`);
  return { valid: errors.length === 0, errors };
}

const manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')) as { cases: ValidatorCase[] };
const results = manifest.cases.map((c) => ({ c, ...verdict(c) }));
const agreeing = results.filter((r) => r.valid === r.c.expected_valid);

describe('the HL7 validator test cases', () => {
  test('a report lists the agreement count and every disagreement with its reason', () => {
    const lines = results
      .filter((r) => r.valid !== r.c.expected_valid)
      .map((r) => `  ${r.c.name}: expected ${r.c.expected_valid ? 'valid' : 'invalid'} — ${disagreements[r.c.name] ?? 'UNEXPLAINED'}`);
    console.log(`validator cases: agree ${agreeing.length}/${results.length}\n${lines.join('\n')}`);
    expect(agreeing.length).toBeGreaterThanOrEqual(80);
  });

  test.each(results.map((r) => [r.c.name, r] as const))('case %s agrees, or is a listed disagreement', (_name, r) => {
    const agrees = r.valid === r.c.expected_valid;
    const listed = r.c.name in disagreements;
    if (listed) {
      // Keeps the list honest: a case that starts agreeing must leave it.
      expect({ case: r.c.name, agrees }).toEqual({ case: r.c.name, agrees: false });
    } else {
      expect({ case: r.c.name, valid: r.valid, errors: r.errors }).toEqual(
        expect.objectContaining({ case: r.c.name, valid: r.c.expected_valid })
      );
    }
  });

  test('every expected-valid case and every structure-or-reference case agrees', () => {
    const failing = results.filter(
      (r) => (r.c.expected_valid || r.c.errors_need_only_structure_or_reference_checks) && r.valid !== r.c.expected_valid
    );
    expect(failing.map((r) => ({ name: r.c.name, errors: r.errors }))).toEqual([]);
  });
});
