import type { ElementDefinition } from '@medplum/fhirtypes';
import { resourceDefinitions, typeDefinitions } from '../validation/structure-definitions';

/**
 * Static types of FHIR elements, read from the R4 StructureDefinition snapshots. The
 * path compiler uses them to know, at startup, that `Patient.identifier` holds
 * Identifiers and `Observation.value[x]` may be a CodeableConcept, so that extraction
 * at write time needs no type inference.
 */
export interface ElementInfo {
  /** Type codes (`Identifier`, `code`, `BackboneElement`); FHIRPath system types mapped to FHIR ones. */
  readonly types: readonly string[];
  /** Path where the children live: the element's own path, or its contentReference target. */
  readonly childPath: string;
  readonly isChoice: boolean;
}

const FHIRPATH_SYSTEM_TYPES: Record<string, string> = {
  'http://hl7.org/fhirpath/System.String': 'string',
  'http://hl7.org/fhirpath/System.Boolean': 'boolean',
  'http://hl7.org/fhirpath/System.Integer': 'integer',
  'http://hl7.org/fhirpath/System.Decimal': 'decimal',
  'http://hl7.org/fhirpath/System.Date': 'date',
  'http://hl7.org/fhirpath/System.DateTime': 'dateTime',
  'http://hl7.org/fhirpath/System.Time': 'time',
};

function typeCode(type: NonNullable<ElementDefinition['type']>[number]): string {
  const fhirType = type.extension?.find(
    (e) => e.url === 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type'
  )?.valueUrl;
  return fhirType ?? FHIRPATH_SYSTEM_TYPES[type.code ?? ''] ?? type.code ?? '';
}

function buildElementIndex(): Map<string, ElementInfo> {
  const index = new Map<string, ElementInfo>();
  for (const sd of [...typeDefinitions, ...resourceDefinitions]) {
    // Profiles (constraints) reuse the base type's paths; only the base definitions count.
    if (sd.derivation === 'constraint') continue;
    for (const el of sd.snapshot?.element ?? []) {
      if (!el.path || index.has(el.path)) continue;
      const isChoice = el.path.endsWith('[x]');
      const path = isChoice ? el.path.slice(0, -3) : el.path;
      const childPath = el.contentReference ? el.contentReference.replace(/^#/, '') : path;
      // contentReference elements (recursive items) carry no type of their own.
      const types = el.contentReference ? ['BackboneElement'] : (el.type ?? []).map(typeCode);
      index.set(path, { types, childPath, isChoice });
    }
  }
  return index;
}

let cached: Map<string, ElementInfo> | undefined;

/** The element at a full path (`Patient.contact.telecom`, `Identifier.type`); choice paths without `[x]`. */
export function elementInfo(path: string): ElementInfo | undefined {
  cached ??= buildElementIndex();
  return cached.get(path);
}

/** Types whose children are defined inline in the owning StructureDefinition. */
export function isInlineComplexType(type: string): boolean {
  return type === 'BackboneElement' || type === 'Element' || type === '';
}

export function isPrimitiveType(type: string): boolean {
  return type.length > 0 && type[0] === type[0].toLowerCase();
}

let baseTypes: Map<string, string> | undefined;

/**
 * FHIRPath `as` / `ofType` accept subtypes: `canonical` is a `uri`, `Age` a `Quantity`
 * (each datatype's baseDefinition says so).
 */
export function isTypeOrSubtype(type: string, base: string): boolean {
  if (!baseTypes) {
    baseTypes = new Map();
    for (const sd of typeDefinitions) {
      const parent = sd.baseDefinition?.split('/').pop();
      if (sd.derivation === 'specialization' && sd.type && parent) baseTypes.set(sd.type, parent);
    }
  }
  for (let t: string | undefined = type; t; t = baseTypes.get(t)) if (t === base) return true;
  return false;
}
