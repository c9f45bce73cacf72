import type { StructureDefinition } from '@medplum/fhirtypes';
import { resourceDefinitions, typeDefinitions } from './structure-definitions';

/**
 * Where an extension may be used (StructureDefinition.context, R4 extensibility.html#context;
 * defining-extensions.html): every extension R4 defines names the elements it may sit on,
 * by type (`HumanName`, `Element`, `Patient`) or by path (`HumanName.family`,
 * `Patient.contact`, `Questionnaire.item`). HL7's validator refuses one used elsewhere
 * ("is not allowed to be used at this point"); so does this check, for R4's definitions.
 * Context invariants (`contextInvariant`, 13 Questionnaire and List extensions) are
 * evaluated by the resource walker, on the element itself.
 */

/** The element an extension sits on: its definition paths (empty for a resource) and its type. */
export interface ExtensionHost {
  paths: readonly string[];
  type: string;
}

let parents: ReadonlyMap<string, string> | undefined;

/** A type and the types it specializes or constrains (code → string → Element; Age → Quantity; Patient → DomainResource → Resource). */
function typeAndAncestors(type: string): string[] {
  parents ??= new Map(
    [...resourceDefinitions, ...typeDefinitions].flatMap((sd) => {
      const name = sd.derivation === 'constraint' && sd.kind === 'complex-type' ? sd.name : sd.type;
      const base = sd.baseDefinition?.slice(sd.baseDefinition.lastIndexOf('/') + 1);
      return name && base && name !== base ? [[name, base] as const] : [];
    })
  );
  const chain = [type];
  for (let current = parents.get(type); current && !chain.includes(current); current = parents.get(current)) chain.push(current);
  return chain;
}

const ancestorsByType = new Map<string, string[]>();

/** The names this element answers to, as an extension's context expression would name it. */
function hostNames(host: ExtensionHost): string[] {
  let types = ancestorsByType.get(host.type);
  if (!types) ancestorsByType.set(host.type, (types = typeAndAncestors(host.type)));
  const names = [...host.paths, ...host.paths.filter((p) => p.endsWith('[x]')).map((p) => p.slice(0, -3)), ...types];
  if (!names.includes('Element')) names.push('Element');
  return names;
}

/**
 * Two of R4's tooling extensions are used by R4's own published resources outside the
 * context their definitions give, and HL7's publication accepts them there: the contexts
 * R4 itself uses are added. (Every other use in HL7's 813 R4 examples and in the Synthea
 * set keeps to its definition's context.)
 */
const CONTEXTS_R4_ALSO_USES: Readonly<Record<string, readonly string[]>> = {
  // On ElementDefinition.type in every snapshot R4 publishes; the definition says ElementDefinition.type.code.
  'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type': ['ElementDefinition.type'],
  // On R4's normative CodeSystems, ValueSets and OperationDefinitions; the definition says StructureDefinition.
  'http://hl7.org/fhir/StructureDefinition/structuredefinition-normative-version': ['CodeSystem', 'ValueSet', 'OperationDefinition'],
};

/** Why `definition` (an extension R4 defines) may not be used on `host`, or undefined when it may (or says nothing). */
export function extensionContextProblem(definition: StructureDefinition, host: ExtensionHost): string | undefined {
  const contexts = (definition.context ?? []).filter((c) => c.type === 'element' && typeof c.expression === 'string');
  if (contexts.length === 0 || contexts.length !== (definition.context ?? []).length) return undefined;
  const names = hostNames(host);
  if (contexts.some((c) => names.includes(c.expression))) return undefined;
  if (CONTEXTS_R4_ALSO_USES[definition.url]?.some((c) => names.includes(c))) return undefined;
  const shown = [host.type, ...host.paths.filter((p) => p !== host.type)];
  return (
    `The extension ${definition.url} is not allowed to be used at this point ` +
    `(this element is [${shown.join(', ')}]; allowed = ${contexts.map((c) => `e:${c.expression}`).join(', ')})`
  );
}
