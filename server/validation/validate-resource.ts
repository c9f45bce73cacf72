import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { OperationOutcomeError, outcome } from '../core/outcome';
import { claimedProfileIssues } from './claimed-profiles';
import type { ProfileResolver } from './profile-validation';
import { ResourceWalker } from './resource-walker';
import type { ValidationOptions } from './resource-walker';

export type { ValidationOptions } from './resource-walker';

/**
 * Validates parsed JSON as an R4 (4.0.1) resource against the official StructureDefinitions:
 * structure, cardinality, primitive formats, FHIRPath invariants, locally expandable
 * required bindings, contained resources and nested Bundle entries.
 * Never throws on bad input: every problem is an issue with an `expression` path.
 */
export function validateResource(resource: unknown, options?: ValidationOptions): OperationOutcomeIssue[] {
  const walker = new ResourceWalker(options);
  walker.walkResource(resource, '', 0);
  return walker.issues;
}

export function isBlocking(issue: OperationOutcomeIssue): boolean {
  return issue.severity === 'error' || issue.severity === 'fatal';
}

/**
 * Throws a 400 OperationOutcomeError listing every issue when any is an error, then a 422
 * (http.html: "the proposed resource violated applicable FHIR profiles") when the
 * resource breaks a profile it claims in meta.profile that `resolveProfile` knows (by
 * default those R4 publishes; the write path adds those stored here).
 */
export function assertValidResource(resource: unknown, resolveProfile?: ProfileResolver): void {
  const issues = validateResource(resource);
  if (issues.some(isBlocking)) {
    throw new OperationOutcomeError(400, outcome(issues));
  }
  const profileIssues = claimedProfileIssues(resource, { vitalSigns: false, resolve: resolveProfile });
  if (profileIssues.some(isBlocking)) {
    throw new OperationOutcomeError(422, outcome(profileIssues));
  }
}

/**
 * Builds the schemas and value-set expansions of the common types up front, so that the
 * first request does not pay for it (see the warm-up figure in scripts/bench/validation.ts).
 */
export function warmUpValidation(): void {
  validateResource({
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '1-8' }] },
    subject: { reference: 'Patient/x' },
    effectivePeriod: { start: '2020-01-01', end: '2020-01-02' },
    valueQuantity: { value: 1, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' },
  });
}
