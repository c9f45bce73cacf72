import type { Knex } from 'knex';

/**
 * Every committed change to a Consent notifies `fhir_consent_changed`, so that each server
 * process can keep the Consent rules it computed until one changes instead of searching
 * Consents on every request (access/consent-watch.ts). PostgreSQL delivers NOTIFY only on
 * COMMIT, and per statement is enough: listeners only need "something changed".
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE OR REPLACE FUNCTION fhir_consent_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('fhir_consent_changed', '');
      RETURN NULL;
    END $$`);
  await knex.raw('DROP TRIGGER IF EXISTS fhir_consent_notify ON "Consent"');
  await knex.raw('CREATE TRIGGER fhir_consent_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "Consent" FOR EACH STATEMENT EXECUTE FUNCTION fhir_consent_notify()');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER IF EXISTS fhir_consent_notify ON "Consent"');
  await knex.raw('DROP FUNCTION IF EXISTS fhir_consent_notify()');
}
