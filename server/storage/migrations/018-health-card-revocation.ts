import type { Knex } from 'knex';

/**
 * SMART Health Card revocation (https://spec.smarthealth.cards/#revocation): each issuer
 * key gets a secret for the cards' revocation ids (`rid`, an HMAC of the patient id: see
 * auth/health-card-revocation.ts), filled in by the server for keys made before this
 * migration, and a Card Revocation List (`ctr` counts its updates, starting at 1; `rids`
 * the revoked ids, each with a `.<seconds>` suffix: cards issued before then).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE health_card_key ADD COLUMN IF NOT EXISTS rid_secret text');
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS health_card_crl (
      kid text PRIMARY KEY REFERENCES health_card_key (kid) ON DELETE CASCADE,
      ctr integer NOT NULL DEFAULT 1,
      rids text[] NOT NULL DEFAULT '{}'
    )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS health_card_crl');
  await knex.raw('ALTER TABLE health_card_key DROP COLUMN IF EXISTS rid_secret');
}
