import type { FhirHandler } from '../fhir/fhir-request';
import { conceptIndex, isAbstract } from '../terminology/code-system-hierarchy';
import { OperationInput } from './operation-parameters';
import { callerTerminology, codingsToValidate, describe, displayProblem, namedCodeSystem, validationResult } from './terminology-operation-support';
import { badRequest } from '../core/outcome';

/**
 * `CodeSystem/$validate-code` and `CodeSystem/[id]/$validate-code` (R4
 * codesystem-operation-validate-code): whether `code` (+ `display`), a `coding` or one
 * coding of a `codeableConcept` is a concept of the code system (`url`, the coding's
 * system, the instance, or a `codeSystem` in the body). A code system held here only in
 * part (content fragment or example) cannot say a code is not in it: that is a 400;
 * one whose concepts are not here at all (SNOMED CT) is a 400 too.
 */
export const codeSystemValidateCode: FhirHandler = async (req, ctx) => {
  const input = OperationInput.of('validate-code', req.body, req.query);
  const { codings } = codingsToValidate(input, undefined);
  const codeSystem = await namedCodeSystem(input, req.id, ctx.repo, callerTerminology(ctx.repo), 'url', codings);
  if (!codeSystem.concept?.length) throw badRequest(`CodeSystem ${codeSystem.url} has no concepts here (content ${codeSystem.content}): its codes cannot be validated`, 'url');
  const index = conceptIndex(codeSystem);
  const abstractAllowed = input.boolean('abstract') ?? false;
  const problems: string[] = [];
  for (const coding of codings) {
    if (coding.system && coding.system !== codeSystem.url) {
      problems.push(`${describe(coding)} is not from the code system ${codeSystem.url}`);
      continue;
    }
    const concept = index.concepts.get(coding.code as string);
    if (!concept) {
      if (codeSystem.content !== 'complete') throw badRequest(`CodeSystem ${codeSystem.url} is held here only in part (content ${codeSystem.content}): it cannot say whether ${coding.code} is one of its codes`, 'code');
      problems.push(`${describe({ ...coding, system: codeSystem.url })} is not a code of ${codeSystem.url}`);
      continue;
    }
    const problem = isAbstract(concept) && !abstractAllowed ? `${coding.code} is abstract: not for use here (abstract=true allows it)` : displayProblem(coding, concept.display);
    if (!problem) return { status: 200, resource: validationResult(true, concept.display) };
    problems.push(problem);
  }
  return { status: 200, resource: validationResult(false, undefined, problems.join('; ')) };
};
