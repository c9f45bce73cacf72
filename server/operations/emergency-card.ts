import type { Parameters, ParametersParameter, Patient, Resource } from '@medplum/fhirtypes';
import type { FhirHandler } from '../fhir/fhir-request';
import { BLOOD_GROUP_CODES, criticalSummary } from './critical-summary';
import { NO_STORE, signHealthCard } from './health-card';
import { healthCardBundle } from './health-card-bundle';
import { healthCardQrs } from './health-card-qr';

/** The SMART Health Card file type (https://spec.smarthealth.cards/#via-file-download). */
export const SMART_HEALTH_CARD = 'application/smart-health-card';

const BLOOD_GROUP = new Set(BLOOD_GROUP_CODES);

/**
 * `GET Patient/[id]/$emergency-card`: the patient's critical summary (critical-summary.ts)
 * as a SMART Health Card the patient can carry on paper or phone, signed with the
 * server's ES256 issuer key and verifiable offline against `iss`/.well-known/jwks.json.
 *
 * Read through the caller's confined store: a patient gets their own card, a practitioner
 * the cards of the patients of their hospital, a system client what its scopes allow;
 * what the caller may not see is not on the card.
 *
 * Answers a Parameters with the JWS (`verifiableCredential`), the QR content of each
 * chunk (`qrNumeric`) and its image (`qrImage`, PNG); with `Accept:
 * application/smart-health-card` the `.smart-health-card` file instead.
 */
export const emergencyCard: FhirHandler = async (req, ctx) => {
  if (!ctx.healthCardKey) throw new Error('$emergency-card: this FHIR context has no health card issuer key');
  // 404 for an unknown patient, 410 for a deleted one, 403 for one the caller may not see.
  const version = await ctx.repo.read('Patient', req.id as string);
  const patient = version.resource as Patient & { id: string };
  const resources = (await criticalSummary(ctx.repo, patient)).filter(onCard);
  const jws = await signHealthCard(ctx.healthCardKey, ctx.config.publicUrl.replace(/\/+$/, ''), healthCardBundle(resources, ctx.baseUrl), { patientId: patient.id });
  if (req.alternativeType === SMART_HEALTH_CARD) {
    return { status: 200, document: { contentType: SMART_HEALTH_CARD, json: { verifiableCredential: [jws] } }, headers: NO_STORE };
  }
  const qrs = await healthCardQrs(jws);
  const parameter: ParametersParameter[] = [
    { name: 'verifiableCredential', valueString: jws },
    ...qrs.map((qr) => ({ name: 'qrNumeric', valueString: qr.numeric })),
    ...qrs.map((qr) => ({ name: 'qrImage', valueAttachment: { contentType: 'image/png', data: qr.png.toString('base64') } })),
  ];
  const result: Parameters = { resourceType: 'Parameters', parameter };
  return { status: 200, resource: result, headers: NO_STORE };
};

/**
 * The card leaves out the latest vital signs the summary carries for the emergency team:
 * they are one moment's values, stale long before the card is (it does not expire), and
 * each costs QR area that would push the card into more than one QR. Blood group stays:
 * it does not change.
 */
function onCard(resource: Resource): boolean {
  if (resource.resourceType !== 'Observation') return true;
  return (resource.code?.coding ?? []).some((c) => BLOOD_GROUP.has(`${c.system}|${c.code}`));
}
