import path from 'node:path';
import type { Knex } from 'knex';
import { verifyAuditChain } from '../../server/audit/audit-chain';
import { databaseInstance, readAnchors } from '../../server/audit/chain-anchors';

/**
 * `cli audit verify`: the report as lines, and whether the audit trail is intact
 * (docs/audit.md). `anchorBaseDir` is AUDIT_ANCHOR_DIR, or a copy of it kept elsewhere.
 */
export async function auditVerify(knex: Knex, anchorBaseDir: string): Promise<{ ok: boolean; lines: string[] }> {
  const anchorDir = path.join(anchorBaseDir, await databaseInstance(knex));
  const { anchors, unreadable } = await readAnchors(anchorDir);
  const report = await verifyAuditChain(knex, anchors);
  const lines = report.problems.map((p) =>
    p.stream === undefined ? `${p.kind}: ${p.detail}` : `${p.kind}: stream ${p.stream} seq ${p.seq}: ${p.detail}`
  );
  for (const name of unreadable) lines.push(`unreadable anchor: ${path.join(anchorDir, name)}`);
  const ok = report.problems.length === 0 && unreadable.length === 0;
  lines.push(
    ok
      ? `audit trail intact: ${report.checked} AuditEvents in ${report.streams} streams`
      : `audit trail NOT intact: ${report.problems.length + unreadable.length} problems in ${report.checked} chain entries of ${report.streams} streams`
  );
  lines.push(
    `${report.anchored} streams checked against their anchors in ${anchorDir}` +
      (report.unanchored > 0 ? `; ${report.unanchored} streams have no anchor there (sealed by servers whose AUDIT_ANCHOR_DIR is elsewhere, or before anchors)` : '')
  );
  if (report.pending > 0) lines.push(`${report.pending} AuditEvents are stored and queued for the chain, not linked yet (a running server links them within moments)`);
  return { ok, lines };
}
