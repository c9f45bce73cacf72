import type { Coding } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { conceptIndex } from '../terminology/code-system-hierarchy';
import { OperationInput } from './operation-parameters';
import { callerTerminology, namedCodeSystem } from './terminology-operation-support';

/**
 * `CodeSystem/$subsumes` and `CodeSystem/[id]/$subsumes` (R4
 * codesystem-operation-subsumes): how `codeA` and `codeB` (or `codingA` and `codingB`)
 * relate in the code system's is-a hierarchy: equivalent, subsumes (A is above B),
 * subsumed-by, or not-subsumed. Both must be codes of that one code system.
 */
export const codeSystemSubsumes: FhirHandler = async (req, ctx) => {
  const input = OperationInput.of('subsumes', req.body, req.query);
  const codingA = input.coding('codingA');
  const codingB = input.coding('codingB');
  const a = codingA?.code ?? input.string('codeA');
  const b = codingB?.code ?? input.string('codeB');
  if (!a || !b) throw badRequest('$subsumes needs codeA and codeB (or codingA and codingB)', a ? 'codeB' : 'codeA');
  const codings = [codingA, codingB].filter((c): c is Coding => c !== undefined);
  const codeSystem = await namedCodeSystem(input, req.id, ctx.repo, callerTerminology(ctx.repo), 'system', codings);
  for (const coding of codings) {
    if (coding.system && coding.system !== codeSystem.url) throw badRequest(`${coding.system}#${coding.code} is not from the code system ${codeSystem.url}`, 'system');
  }
  const index = conceptIndex(codeSystem);
  for (const [name, code] of [['codeA', a], ['codeB', b]]) {
    if (!index.concepts.has(code)) throw badRequest(`${code} is not a code of ${codeSystem.url}`, name);
  }
  const outcome = a === b ? 'equivalent' : index.descendants(a).has(b) ? 'subsumes' : index.descendants(b).has(a) ? 'subsumed-by' : 'not-subsumed';
  return { status: 200, resource: { resourceType: 'Parameters', parameter: [{ name: 'outcome', valueCode: outcome }] } };
};
