import { createHmac, randomBytes } from 'node:crypto';
import type { Knex } from 'knex';

/**
 * Revocation of SMART Health Cards (https://spec.smarthealth.cards/#revocation). Each card
 * carries `vc.rid`, the revocation id of its patient under the key that signed it: the
 * first 64 bits of HMAC-SHA-256 keyed with the key's secret and kid, over the patient id,
 * base64url (the spec's recommended form: meaningless to verifiers, not reversible). Each
 * key publishes a Card Revocation List at `/.well-known/crl/<kid>.json`, and its
 * `crlVersion` (the list's counter) in the JWKS, so verifiers know when to fetch it again.
 * `cli health-card revoke --patient ID` lists the patient's rid under every key with the
 * current time as suffix: the cards issued until now no longer verify, those issued
 * after do (a reissued card).
 */

export interface CardRevocationList {
  kid: string;
  method: 'rid';
  ctr: number;
  rids: string[];
}

/** A new key's revocation secret: 256 random bits, base64url. */
export function newRevocationSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function revocationId(secret: string, kid: string, patientId: string): string {
  const key = Buffer.concat([Buffer.from(secret, 'base64url'), Buffer.from(kid, 'utf8')]);
  return createHmac('sha256', key).update(patientId, 'utf8').digest().subarray(0, 8).toString('base64url');
}

/** The list of a published key (counter 1 and no rid until something is revoked); undefined for a kid not published. */
export async function revocationList(knex: Knex, kid: string): Promise<CardRevocationList | undefined> {
  const row = await knex('health_card_key as k')
    .leftJoin('health_card_crl as c', 'c.kid', 'k.kid')
    .where('k.kid', kid)
    .first<{ ctr: number | null; rids: string[] | null } | undefined>('c.ctr', 'c.rids');
  if (!row) return undefined;
  return { kid, method: 'rid', ctr: row.ctr ?? 1, rids: row.rids ?? [] };
}

/** Each published key's list counter (its JWK's `crlVersion`). */
export async function crlVersions(knex: Knex): Promise<Map<string, number>> {
  const rows: { kid: string; ctr: number }[] = await knex('health_card_crl').select('kid', 'ctr');
  return new Map(rows.map((r) => [r.kid, r.ctr]));
}

/**
 * Revokes the patient's cards issued before `before` under every key: their rid with
 * the time as suffix replaces any earlier entry for that rid, and each list's counter
 * goes up. Returns the kids and rids listed.
 */
export async function revokePatientCards(knex: Knex, patientId: string, before: Date = new Date()): Promise<{ kid: string; rid: string }[]> {
  return knex.transaction(async (tx) => {
    const keys: { kid: string; rid_secret: string | null }[] = await tx('health_card_key').select('kid', 'rid_secret').forUpdate();
    const listed: { kid: string; rid: string }[] = [];
    for (const key of keys) {
      if (!key.rid_secret) continue; // A key that never signed since revocation existed: its cards carry no rid.
      const rid = revocationId(key.rid_secret, key.kid, patientId);
      const entry = `${rid}.${Math.floor(before.getTime() / 1000)}`;
      await tx.raw(
        `INSERT INTO health_card_crl (kid, ctr, rids) VALUES (?, 2, ARRAY[?]::text[])
         ON CONFLICT (kid) DO UPDATE SET ctr = health_card_crl.ctr + 1,
           rids = array_append(ARRAY(SELECT r FROM unnest(health_card_crl.rids) r WHERE split_part(r, '.', 1) <> ?), ?)`,
        [key.kid, entry, rid, entry]
      );
      listed.push({ kid: key.kid, rid });
    }
    return listed;
  });
}
