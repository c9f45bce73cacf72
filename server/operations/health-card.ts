import { promisify } from 'node:util';
import { constants, deflateRaw } from 'node:zlib';
import type { Bundle } from '@medplum/fhirtypes';
import type { HealthCardKey } from '../auth/health-card-key';

const deflate = promisify(deflateRaw);

/** Cards (and the patient data they hold) must not linger in shared caches. */
export const NO_STORE = { 'Cache-Control': 'no-store' };

/** The one credential type every card carries (https://spec.smarthealth.cards/#health-cards-are-encoded-as-compact-serialization-json-web-signatures-jws). */
export const HEALTH_CARD_TYPE = 'https://smarthealth.cards#health-card';

/**
 * A SMART Health Card: the JWT claims `iss`, `nbf` and `vc` (with `types` beside the
 * health-card type, and the patient's revocation id `rid`) around `bundle` (already
 * minified: health-card-bundle.ts), serialized without whitespace, raw-DEFLATE
 * compressed (no zlib header, as the spec requires) and signed with the issuer key.
 * No `exp`: a card states facts as of `nbf` and does not expire.
 */
export async function signHealthCard(
  key: HealthCardKey,
  issuer: string,
  bundle: Bundle,
  card: { patientId: string; types?: readonly string[]; now?: Date }
): Promise<string> {
  const payload = {
    iss: issuer,
    nbf: Math.floor((card.now ?? new Date()).getTime() / 1000),
    vc: {
      type: [HEALTH_CARD_TYPE, ...(card.types ?? [])],
      // The patient's revocation id (auth/health-card-revocation.ts): revoking lists it.
      rid: await key.revocationId(card.patientId),
      credentialSubject: { fhirVersion: '4.0.1', fhirBundle: bundle },
    },
  };
  // Best compression: every byte saved is QR area (or a whole QR) saved.
  const compressed = await deflate(Buffer.from(JSON.stringify(payload), 'utf8'), { level: constants.Z_BEST_COMPRESSION });
  return key.sign(compressed);
}
