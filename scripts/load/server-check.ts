import { type FhirEndpoint, get, UnreachableError } from './fhir-endpoint';

/**
 * Before sending megabytes: is there a FHIR server at the base URL, and does it let us
 * in? `GET [base]/metadata` answers both. Throws an Error with a message for a person.
 */
export async function checkServer(target: FhirEndpoint): Promise<void> {
  let answer;
  try {
    answer = await get(target, 'metadata');
  } catch (err) {
    const hint = err instanceof UnreachableError ? ' Is the server running? Set the address with --url or FHIR_URL.' : '';
    throw new Error(`Cannot reach the FHIR server at ${target.base}: ${(err as Error).message}.${hint}`);
  }
  if (answer.status === 401 || answer.status === 403) {
    throw new Error(`The FHIR server at ${target.base} refused access (${answer.status}): ${target.token ? 'check --token' : 'it needs --token'}.`);
  }
  let resourceType: unknown;
  try {
    resourceType = (JSON.parse(answer.body) as { resourceType?: unknown }).resourceType;
  } catch {
    // not JSON: said below
  }
  if (answer.status !== 200 || resourceType !== 'CapabilityStatement') {
    throw new Error(
      `${target.base} does not look like a FHIR base URL: GET ${target.base}/metadata answered ${answer.status}` +
        `${resourceType ? ` with a ${String(resourceType)}` : ''}, not a CapabilityStatement.`
    );
  }
}
