import type { Knex } from 'knex';

/**
 * AuditEvents are append-only (issue 6, docs/audit.md):
 *  - audit_chain: one hash chain per server process ("stream"), a row per AuditEvent,
 *    written in the same transaction as the AuditEvent, so `cli audit verify` can tell
 *    modified, removed and inserted AuditEvents and broken links;
 *  - triggers refuse DELETE, TRUNCATE, and any UPDATE that changes the content (or the
 *    version, deleted flag) of an AuditEvent row or of an AuditEvent history row. Updates
 *    that leave those alone stay allowed: the reindex job fills search columns of
 *    existing rows when a custom SearchParameter is added.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS audit_chain (
      stream text NOT NULL,
      seq bigint NOT NULL,
      audit_event_id text NOT NULL,
      hash text NOT NULL,
      prev_hash text NOT NULL,
      recorded_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (stream, seq)
    )`);
  await knex.raw('CREATE INDEX IF NOT EXISTS audit_chain_event_idx ON audit_chain (audit_event_id)');
  await knex.raw(`
    CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'UPDATE' THEN
        IF NEW.content IS NOT DISTINCT FROM OLD.content AND NEW.version_id = OLD.version_id
           AND NEW.deleted = OLD.deleted AND NEW.id = OLD.id THEN
          RETURN NEW;
        END IF;
      END IF;
      RAISE EXCEPTION 'AuditEvent is append-only: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
    END $$`);
  await knex.raw(`
    CREATE OR REPLACE FUNCTION audit_chain_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'audit_chain is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$`);
  await knex.raw('DROP TRIGGER IF EXISTS audit_event_append_only ON "AuditEvent"');
  await knex.raw(`CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON "AuditEvent"
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()`);
  await knex.raw('DROP TRIGGER IF EXISTS audit_event_no_truncate ON "AuditEvent"');
  await knex.raw(`CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON "AuditEvent"
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_refuse_change()`);
  await knex.raw('DROP TRIGGER IF EXISTS audit_history_append_only ON resource_history');
  await knex.raw(`CREATE TRIGGER audit_history_append_only BEFORE UPDATE OR DELETE ON resource_history
    FOR EACH ROW WHEN (OLD.resource_type = 'AuditEvent') EXECUTE FUNCTION audit_refuse_change()`);
  await knex.raw('DROP TRIGGER IF EXISTS audit_chain_append_only ON audit_chain');
  await knex.raw(`CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_refuse_change()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER IF EXISTS audit_event_append_only ON "AuditEvent"');
  await knex.raw('DROP TRIGGER IF EXISTS audit_event_no_truncate ON "AuditEvent"');
  await knex.raw('DROP TRIGGER IF EXISTS audit_history_append_only ON resource_history');
  await knex.raw('DROP TABLE IF EXISTS audit_chain');
  await knex.raw('DROP FUNCTION IF EXISTS audit_refuse_change()');
  await knex.raw('DROP FUNCTION IF EXISTS audit_chain_refuse_change()');
}
