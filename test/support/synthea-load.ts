import { fhirRequest } from './fhir-client';
import { informationFiles, readSyntheaBundle, smallestPatientFiles } from './synthea-bundles';

/**
 * Loads Synthea's hospital and practitioner bundles, then the `count` smallest patient
 * bundles, each as the transaction it is, into the server at `base`; the ids the server
 * gave the patients, in file order.
 */
export async function loadSyntheaPatients(base: string, count: number): Promise<string[]> {
  for (const file of informationFiles()) {
    const res = await fhirRequest('POST', base, { body: readSyntheaBundle(file) });
    if (res.status !== 200) throw new Error(`${file}: ${res.status}`);
  }
  const patients: string[] = [];
  for (const file of smallestPatientFiles(count)) {
    const bundle = readSyntheaBundle(file);
    const res = await fhirRequest('POST', base, { body: bundle });
    if (res.status !== 200) throw new Error(`${file}: ${res.status}`);
    const index = bundle.entry.findIndex((e) => e.resource.resourceType === 'Patient');
    patients.push(/Patient\/([^/]+)/.exec(res.body.entry[index].response.location)?.[1] as string);
  }
  return patients;
}
