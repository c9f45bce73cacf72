import type { Knex } from 'knex';

/**
 * audit_outbox: the AuditEvents of reads, committed before the response is sent and
 * turned into AuditEvent resources (validated, indexed, hash-chained) in large batches
 * off the request path (audit/audit-recorder.ts, docs/audit.md). A bare heap with its
 * primary key: one multi-row INSERT per group commit, nothing to index.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS audit_outbox (
      id bigserial PRIMARY KEY,
      event jsonb NOT NULL
    )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS audit_outbox');
}
