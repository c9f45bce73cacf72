/**
 * AuditEvents are queued for the hash chain by the very statement that stores them
 * (migration 008, docs/audit.md), whatever wrote them: the server's own records, a
 * client's POST, a transaction or a batch entry, an interaction's own AuditEvent riding
 * on the write (write-statements.ts, CompanionStatements). An AuditEvent inserted by other means
 * (plain SQL) is never queued, so `audit verify` reports it as inserted.
 */
export const SEALED_TYPES: ReadonlySet<string> = new Set(['AuditEvent']);

/** SHA-256 (hex) of a jsonb value's text: PostgreSQL writes jsonb with one key order and one spacing. */
export function digestSql(column: string): string {
  return `encode(sha256(convert_to(${column}::text, 'UTF8')), 'hex')`;
}
