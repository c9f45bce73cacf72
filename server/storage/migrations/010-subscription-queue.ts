import type { Knex } from 'knex';

/**
 * Subscription notifications (storage/subscription-rules.ts, jobs/subscription-delivery.ts): every version written of a type
 * that an active Subscription watches is queued, one row per (Subscription, version), by
 * a statement-level trigger on resource_history, in the write's own transaction: a
 * committed write is never left unnotified, even if the process dies right after. The
 * trigger is enabled only while a Subscription is active (storage/write-subscription.ts).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE subscription_queue (
      seq bigserial PRIMARY KEY,
      subscription_id text NOT NULL,
      resource_type text NOT NULL,
      id text NOT NULL,
      version_id integer NOT NULL,
      attempts integer NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      last_error text
    )`);
  await knex.raw('CREATE INDEX subscription_queue_due ON subscription_queue (next_attempt_at)');
  await knex.raw(`
    CREATE OR REPLACE FUNCTION fhir_subscription_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM "Subscription" WHERE NOT deleted AND content->>'status' = 'active') THEN
        RETURN NULL;
      END IF;
      INSERT INTO subscription_queue (subscription_id, resource_type, id, version_id)
      SELECT s.id, n.resource_type, n.id, n.version_id
        FROM new_rows n
        JOIN "Subscription" s ON NOT s.deleted AND s.content->>'status' = 'active'
         AND split_part(s.content->>'criteria', '\\?', 1) = n.resource_type
       WHERE NOT n.deleted;
      RETURN NULL;
    END $$`);
  await knex.raw(`
    CREATE TRIGGER fhir_subscription_enqueue AFTER INSERT ON resource_history
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fhir_subscription_enqueue()`);
  // Off until a Subscription is active (storage/write-subscription.ts): it costs every write statement.
  const active = await knex.raw(`SELECT 1 FROM "Subscription" WHERE NOT deleted AND content->>'status' = 'active' LIMIT 1`);
  if (active.rows.length === 0) await knex.raw('ALTER TABLE resource_history DISABLE TRIGGER fhir_subscription_enqueue');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER IF EXISTS fhir_subscription_enqueue ON resource_history');
  await knex.raw('DROP FUNCTION IF EXISTS fhir_subscription_enqueue()');
  await knex.raw('DROP TABLE IF EXISTS subscription_queue');
}
