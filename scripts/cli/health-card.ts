import type { Knex } from 'knex';
import { isValidId } from '../../server/core/ids';
import { rotateHealthCardKey } from '../../server/auth/health-card-key';
import { revokePatientCards } from '../../server/auth/health-card-revocation';
import { CliError } from './client-add';

/**
 * `cli health-card revoke --patient ID`: the patient's SMART Health Cards issued until now
 * stop verifying (their rid goes on every key's revocation list); cards issued after, a
 * reissue, verify. Verifiers see it once they fetch the lists again (the JWKS's
 * crlVersion tells them; it is cached for up to ten minutes).
 */
export async function revokeHealthCards(knex: Knex, patientId: string): Promise<string[]> {
  if (!isValidId(patientId)) throw new CliError(`'${patientId}' is not a FHIR id`);
  const listed = await revokePatientCards(knex, patientId);
  if (listed.length === 0) return [`no issuer key has signed a card yet: nothing to revoke for Patient/${patientId}`];
  return [
    `revoked the SMART Health Cards of Patient/${patientId} issued until now:`,
    ...listed.map(({ kid, rid }) => `  key ${kid}: rid ${rid} listed at /.well-known/crl/${kid}.json`),
  ];
}

/** `cli health-card rotate-key`: a new issuer key signs from now on; the old ones stay published. */
export async function rotateHealthCardKeyCommand(knex: Knex): Promise<string[]> {
  const kid = await rotateHealthCardKey(knex);
  return [`new SMART Health Card issuer key ${kid} signs from now on (every server process within a minute);`, 'the keys before it stay in /.well-known/jwks.json, so the cards they signed still verify'];
}
