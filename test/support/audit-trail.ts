import type { AuditEvent } from '@medplum/fhirtypes';
import type { Knex } from 'knex';

/** A minimal valid AuditEvent of a read, without id. */
export function readAuditEvent(outcome = '0'): AuditEvent {
  return {
    resourceType: 'AuditEvent',
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
    subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read' }],
    action: 'R',
    recorded: new Date().toISOString(),
    outcome: outcome as AuditEvent['outcome'],
    agent: [{ who: { display: 'test' }, requestor: true }],
    source: { observer: { display: 'test' } },
  };
}

/** Empties the audit trail (the append-only triggers forbid this to anyone but a test in replica mode). */
export async function emptyAuditTrail(knex: Knex): Promise<void> {
  await knex.transaction(async (trx) => {
    await trx.raw('SET LOCAL session_replication_role = replica');
    await trx.raw(`DELETE FROM "AuditEvent"; DELETE FROM resource_history WHERE resource_type = 'AuditEvent'; DELETE FROM audit_chain; DELETE FROM audit_unsealed; DELETE FROM audit_outbox`);
  });
}
