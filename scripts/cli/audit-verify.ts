import type { Knex } from 'knex';
import { verifyAuditChain } from '../../server/audit/audit-chain';

/** `cli audit verify`: the report as lines, and whether the audit trail is intact (docs/audit.md). */
export async function auditVerify(knex: Knex): Promise<{ ok: boolean; lines: string[] }> {
  const report = await verifyAuditChain(knex);
  const lines = report.problems.map((p) =>
    p.stream === undefined ? `${p.kind}: ${p.detail}` : `${p.kind}: stream ${p.stream} seq ${p.seq}: ${p.detail}`
  );
  lines.push(
    report.problems.length === 0
      ? `audit trail intact: ${report.checked} AuditEvents in ${report.streams} streams`
      : `audit trail NOT intact: ${report.problems.length} problems in ${report.checked} chain entries of ${report.streams} streams`
  );
  if (report.pending > 0) lines.push(`${report.pending} AuditEvents are stored and queued for the chain, not linked yet (a running server links them within moments)`);
  return { ok: report.problems.length === 0, lines };
}
