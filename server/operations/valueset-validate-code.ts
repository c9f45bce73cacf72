import type { Coding } from '@medplum/fhirtypes';
import type { FhirHandler } from '../fhir/fhir-request';
import { type ExpandedCode, expandValueSet } from '../terminology/value-set-expansion';
import { OperationInput } from './operation-parameters';
import { callerTerminology, codingsToValidate, describe, displayProblem, expansionFailure, namedValueSet, validationResult } from './terminology-operation-support';

/**
 * `ValueSet/$validate-code` and `ValueSet/[id]/$validate-code` (R4
 * valueset-operation-validate-code): whether `code` + `system` (+ `display`), a `coding`,
 * or one of the codings of a `codeableConcept` is in the value set, from its expansion
 * here (valueset-expand.ts). A code without a system is looked up by code when only one
 * system of the value set has it. An abstract code is valid only with `abstract=true`; a
 * display that is not the code's (case and spacing aside) makes the coding invalid. The
 * answer is `result`, a `message` saying why not, and the code's `display`.
 */
export const valueSetValidateCode: FhirHandler = async (req, ctx) => {
  const input = OperationInput.of('validate-code', req.body, req.query);
  const source = callerTerminology(ctx.repo);
  const valueSet = await namedValueSet(input, req.id, ctx.repo, source);
  const { codings } = codingsToValidate(input, 'system');
  const abstractAllowed = input.boolean('abstract') ?? false;
  const codes = await expandValueSet(valueSet, source).catch((err: unknown) => {
    throw expansionFailure(err);
  });
  const name = valueSet.url ?? `ValueSet/${valueSet.id ?? ''}`;
  const problems: string[] = [];
  for (const coding of codings) {
    const found = lookUp(codes, coding);
    const problem = !found
      ? `${describe(coding)} is not in the value set ${name}`
      : found.abstract && !abstractAllowed
        ? `${describe(coding)} is abstract: not for use here (abstract=true allows it)`
        : displayProblem(coding, found.display);
    if (!problem) return { status: 200, resource: validationResult(true, found?.display) };
    problems.push(problem);
  }
  return { status: 200, resource: validationResult(false, undefined, problems.join('; ')) };
};

function lookUp(codes: readonly ExpandedCode[], coding: Coding): ExpandedCode | undefined {
  const same = codes.filter((c) => c.code === coding.code && (coding.system === undefined || c.system === coding.system));
  return same.length === 1 ? same[0] : undefined;
}
