import type { Knex } from 'knex';

/**
 * The SMART Health Card issuer keys (https://spec.smarthealth.cards/#generating-and-resolving-cryptographic-keys):
 * ES256 (P-256), apart from the OAuth signing keys (RS256, rotated within hours) because
 * a card must verify for as long as it is clinically relevant.
 *
 * At most one row `signs` (the partial unique index): processes that start together each
 * insert a fresh key with ON CONFLICT DO NOTHING and then all read the one that won.
 * Rows that no longer sign stay published so that the cards they signed still verify;
 * deleting a row is how a compromised key is withdrawn.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS health_card_key (
      kid text PRIMARY KEY,
      private_jwk jsonb NOT NULL,
      public_jwk jsonb NOT NULL,
      signs boolean NOT NULL DEFAULT true,
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw('CREATE UNIQUE INDEX IF NOT EXISTS health_card_key_one_signer ON health_card_key ((true)) WHERE signs');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS health_card_key');
}
