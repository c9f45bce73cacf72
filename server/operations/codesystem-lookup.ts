import type { CodeSystemConcept, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { badRequest, notFound } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { conceptIndex, isInactive } from '../terminology/code-system-hierarchy';
import { OperationInput } from './operation-parameters';
import { callerTerminology, namedCodeSystem } from './terminology-operation-support';

/**
 * `CodeSystem/$lookup` and `CodeSystem/[id]/$lookup` (R4 codesystem-operation-lookup):
 * `system` + `code` (+ `version`) or a `coding`, in a code system stored here or an
 * official R4 one. The answer: the code system's `name` and `version`, the concept's
 * `display`, its `designation`s, and as `property` its own properties plus `parent` and
 * `child` (the hierarchy) and `inactive`; with `property` given, only those. An unknown
 * code system or code is a 404.
 */
export const codeSystemLookup: FhirHandler = async (req, ctx) => {
  const input = OperationInput.of('lookup', req.body, req.query);
  const coding = input.coding('coding');
  const code = coding?.code ?? input.string('code');
  if (!code) throw badRequest('$lookup needs code (with system) or coding', 'code');
  const codeSystem = await namedCodeSystem(input, req.id, ctx.repo, callerTerminology(ctx.repo), 'system', coding ? [coding] : []);
  if (!codeSystem.concept?.length) throw badRequest(`CodeSystem ${codeSystem.url} has no concepts here (content ${codeSystem.content})`, 'system');
  const index = conceptIndex(codeSystem);
  const concept = index.concepts.get(code);
  if (!concept) throw notFound(`${code} is not a code of ${codeSystem.url}`);
  const wanted = new Set(input.strings('property'));
  const properties = conceptProperties(concept, [...index.parents(code)], [...index.children(code)]).filter(
    (p) => wanted.size === 0 || wanted.has(p.part?.[0]?.valueCode as string)
  );
  const result: Parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'name', valueString: codeSystem.name ?? codeSystem.title ?? (codeSystem.url as string) },
      ...(codeSystem.version ? [{ name: 'version', valueString: codeSystem.version }] : []),
      { name: 'display', valueString: concept.display ?? code },
      ...(concept.definition && (wanted.size === 0 || wanted.has('definition')) ? [{ name: 'definition', valueString: concept.definition }] : []),
      ...(concept.designation ?? []).map(
        (d): ParametersParameter => ({
          name: 'designation',
          part: [
            ...(d.language ? [{ name: 'language', valueCode: d.language }] : []),
            ...(d.use ? [{ name: 'use', valueCoding: d.use }] : []),
            { name: 'value', valueString: d.value },
          ],
        })
      ),
      ...properties,
    ],
  };
  return { status: 200, resource: result };
};

function conceptProperties(concept: CodeSystemConcept, parents: string[], children: string[]): ParametersParameter[] {
  const property = (code: string, value: ParametersParameter): ParametersParameter => ({ name: 'property', part: [{ name: 'code', valueCode: code }, { ...value, name: 'value' }] });
  const own = (concept.property ?? []).map((p) => {
    const { code, ...value } = p;
    return property(code as string, value as ParametersParameter);
  });
  const stated = new Set((concept.property ?? []).map((p) => p.code));
  return [
    ...own,
    ...(stated.has('parent') ? [] : parents.map((c) => property('parent', { name: 'value', valueCode: c }))),
    ...(stated.has('child') ? [] : children.map((c) => property('child', { name: 'value', valueCode: c }))),
    ...(stated.has('inactive') ? [] : [property('inactive', { name: 'value', valueBoolean: isInactive(concept) })]),
  ];
}
