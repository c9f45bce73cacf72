import type { Knex } from 'knex';

/**
 * Sealing replaces the outbox (docs/audit.md): every AuditEvent is written as its final
 * row at once (reads: group commit before the response; writes: in the write's own
 * transaction), and the statement that writes it also queues it in `audit_unsealed`
 * with the SHA-256 of its stored content. A background sealer then links the queued
 * events into its process's hash chain, a few hundred per transaction, reading only
 * digests.
 *
 * audit_chain.scheme: 1 = hash over canonical JSON of the content (rows written before
 * this migration), 2 = hash over the digest of `content::text` (PostgreSQL's jsonb text,
 * whose key order and spacing are fixed), computed in the database on write and on verify.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS audit_unsealed (
      seq bigserial PRIMARY KEY,
      audit_event_id text NOT NULL,
      digest text NOT NULL
    )`);
  await knex.raw('ALTER TABLE audit_chain ADD COLUMN IF NOT EXISTS scheme smallint NOT NULL DEFAULT 1');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE audit_chain DROP COLUMN IF EXISTS scheme');
  await knex.raw('DROP TABLE IF EXISTS audit_unsealed');
}
