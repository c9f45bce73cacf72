/**
 * AuditEvents are queued for the hash chain by the very statement that stores them
 * (migration 008, docs/audit.md), whatever wrote them: the server's own records, a
 * client's POST, a transaction or a batch entry. An AuditEvent inserted by other means
 * (plain SQL) is never queued, so `audit verify` reports it as inserted.
 */
export const SEALED_TYPES: ReadonlySet<string> = new Set(['AuditEvent']);

/** SHA-256 (hex) of a jsonb value's text: PostgreSQL writes jsonb with one key order and one spacing. */
export function digestSql(column: string): string {
  return `encode(sha256(convert_to(${column}::text, 'UTF8')), 'hex')`;
}

/**
 * Turns `WITH w AS (INSERT … RETURNING id) <history insert> FROM w…` into the same plus
 * the queue row: `w` must then return `content` too, and the history insert becomes a CTE.
 * rowCount stays the number of rows `w` inserted.
 */
export function withSealingQueue(resourceType: string, statement: string): string {
  if (!SEALED_TYPES.has(resourceType)) return statement;
  const marker = 'RETURNING id) ';
  const at = statement.lastIndexOf(marker);
  if (at < 0) throw new Error(`withSealingQueue: no "${marker}" in the ${resourceType} insert`);
  const head = statement.slice(0, at);
  const history = statement.slice(at + marker.length);
  return (
    `${head}RETURNING id, content), h AS (${history}) ` +
    `INSERT INTO audit_unsealed (audit_event_id, digest) SELECT id, ${digestSql('content')} FROM w`
  );
}
