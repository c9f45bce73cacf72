import type { Knex } from 'knex';

/**
 * The SMART / OAuth 2 authorization server's state. Everything a second server process
 * needs lives here (house rule 6): clients, users, signing keys, pending authorizations,
 * codes, refresh tokens, EHR launch contexts, used client-assertion ids, revoked access
 * tokens. Secrets are stored hashed: client secrets and passwords with argon2id, codes
 * and refresh tokens with SHA-256 (they are long random values, so a fast hash suffices).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS auth_client (
      id text PRIMARY KEY,
      name text,
      secret_hash text,
      public boolean NOT NULL DEFAULT false,
      jwks jsonb,
      jwks_url text,
      redirect_uris text[] NOT NULL DEFAULT '{}',
      scope text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS auth_user (
      id text PRIMARY KEY,
      username text NOT NULL UNIQUE,
      password_hash text NOT NULL,
      fhir_user text NOT NULL,
      role text NOT NULL,
      totp_secret text,
      failed_logins integer NOT NULL DEFAULT 0,
      locked_until timestamptz,
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS auth_signing_key (
      kid text PRIMARY KEY,
      alg text NOT NULL,
      private_jwk jsonb NOT NULL,
      public_jwk jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      -- Signs nothing after this; stays in the JWKS until retired_at (its last token expired).
      rotate_at timestamptz NOT NULL,
      retired_at timestamptz NOT NULL
    )`);
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS auth_request (
      id text PRIMARY KEY,
      client_id text NOT NULL REFERENCES auth_client (id) ON DELETE CASCADE,
      params jsonb NOT NULL,
      csrf_token text NOT NULL,
      user_id text REFERENCES auth_user (id) ON DELETE CASCADE,
      state jsonb NOT NULL DEFAULT '{}'::jsonb,
      expires_at timestamptz NOT NULL
    )`);
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS auth_code (
      code_hash text PRIMARY KEY,
      client_id text NOT NULL REFERENCES auth_client (id) ON DELETE CASCADE,
      user_id text NOT NULL REFERENCES auth_user (id) ON DELETE CASCADE,
      redirect_uri text NOT NULL,
      scope text NOT NULL,
      code_challenge text,
      code_challenge_method text,
      nonce text,
      patient text,
      encounter text,
      need_patient_banner boolean NOT NULL DEFAULT false,
      expires_at timestamptz NOT NULL,
      used_at timestamptz,
      -- The refresh-token family issued from this code: a second use of the code revokes it (RFC 6749 §4.1.2).
      family_id text
    )`);
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS auth_refresh_token (
      token_hash text PRIMARY KEY,
      family_id text NOT NULL,
      client_id text NOT NULL REFERENCES auth_client (id) ON DELETE CASCADE,
      user_id text REFERENCES auth_user (id) ON DELETE CASCADE,
      scope text NOT NULL,
      patient text,
      encounter text,
      need_patient_banner boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      used_at timestamptz,
      revoked_at timestamptz
    )`);
  await knex.raw('CREATE INDEX IF NOT EXISTS auth_refresh_token_family_idx ON auth_refresh_token (family_id)');
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS auth_launch (
      id text PRIMARY KEY,
      patient text,
      encounter text,
      created_by text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL
    )`);
  // Whether the app must show which patient it is on: an EHR whose own UI shows it says false (SMART need_patient_banner).
  await knex.raw('ALTER TABLE auth_launch ADD COLUMN IF NOT EXISTS need_patient_banner boolean NOT NULL DEFAULT true');
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS auth_used_jti (
      client_id text NOT NULL,
      jti text NOT NULL,
      expires_at timestamptz NOT NULL,
      PRIMARY KEY (client_id, jti)
    )`);
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS auth_revoked_token (
      jti text PRIMARY KEY,
      expires_at timestamptz NOT NULL
    )`);
  await knex.raw('CREATE INDEX IF NOT EXISTS auth_revoked_token_expires_idx ON auth_revoked_token (expires_at)');
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    'auth_revoked_token',
    'auth_used_jti',
    'auth_launch',
    'auth_refresh_token',
    'auth_code',
    'auth_request',
    'auth_signing_key',
    'auth_user',
    'auth_client',
  ]) {
    await knex.raw(`DROP TABLE IF EXISTS ${table}`);
  }
}
