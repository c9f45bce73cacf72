import { createHash } from 'node:crypto';
import type { Knex } from 'knex';

/** The first prev_hash of every stream. */
export const GENESIS = '0'.repeat(64);

/**
 * What the chain hashes: the stored content of the AuditEvent without meta.versionId and
 * meta.lastUpdated (the version is always 1, and lastUpdated is also in its own column).
 * Everything else the server wrote, id included, is covered. Verify reads the same
 * content back from the database, so the hash is recomputable from the table alone.
 */
export function hashedContent(content: Record<string, unknown>): Record<string, unknown> {
  const { meta, ...rest } = content as { meta?: Record<string, unknown> };
  if (!meta) return rest;
  const { versionId: _v, lastUpdated: _l, ...keep } = meta;
  return Object.keys(keep).length > 0 ? { ...rest, meta: keep } : rest;
}

/** JSON with object keys sorted at every level (RFC 8785's key order; our content has no floats). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** hash = SHA-256(prev_hash ‖ canonical JSON of the hashed content), hex. */
export function chainHash(prevHash: string, content: Record<string, unknown>): string {
  return createHash('sha256').update(prevHash).update(canonicalJson(hashedContent(content))).digest('hex');
}

export interface ChainRow {
  stream: string;
  seq: number;
  audit_event_id: string;
  hash: string;
  prev_hash: string;
}

export interface ChainProblem {
  kind: 'modified' | 'removed' | 'inserted' | 'broken-link';
  stream?: string;
  seq?: number;
  auditEventId: string;
  detail: string;
}

export interface VerifyReport {
  streams: number;
  checked: number;
  problems: ChainProblem[];
  /** Reads' AuditEvents committed to the outbox and not yet chained (drained within moments by a running server). */
  pending: number;
}

const PAGE = 5000;

/**
 * Walks every stream in seq order and recomputes each hash from the AuditEvent's stored
 * content: a changed content is `modified`, a chain row without its AuditEvent `removed`,
 * a link whose prev_hash is not the previous row's hash (or a gap in seq) `broken-link`;
 * then AuditEvents that no chain row names are `inserted`.
 */
export async function verifyAuditChain(knex: Knex): Promise<VerifyReport> {
  const problems: ChainProblem[] = [];
  const streams: { stream: string }[] = await knex('audit_chain').distinct('stream').orderBy('stream');
  let checked = 0;
  for (const { stream } of streams) {
    let prev = GENESIS;
    let expectedSeq = 1;
    for (let after = 0; ; ) {
      const rows: (ChainRow & { content: Record<string, unknown> | null; deleted: boolean | null })[] = await knex('audit_chain as c')
        .leftJoin('AuditEvent as a', 'a.id', 'c.audit_event_id')
        .select('c.stream', 'c.seq', 'c.audit_event_id', 'c.hash', 'c.prev_hash', 'a.content', 'a.deleted')
        .where('c.stream', stream)
        .andWhere('c.seq', '>', after)
        .orderBy('c.seq')
        .limit(PAGE);
      for (const row of rows) {
        const seq = Number(row.seq);
        checked++;
        const at = { stream, seq, auditEventId: row.audit_event_id };
        if (seq !== expectedSeq) {
          problems.push({ ...at, kind: 'broken-link', detail: `seq ${expectedSeq}..${seq - 1} missing` });
        }
        if (row.prev_hash !== prev) {
          problems.push({ ...at, kind: 'broken-link', detail: 'prev_hash is not the hash of the previous row' });
        }
        if (!row.content || row.deleted) {
          problems.push({ ...at, kind: 'removed', detail: `AuditEvent/${row.audit_event_id} is gone` });
        } else if (chainHash(row.prev_hash, row.content) !== row.hash) {
          problems.push({ ...at, kind: 'modified', detail: `AuditEvent/${row.audit_event_id} does not match its hash` });
        }
        prev = row.hash;
        expectedSeq = seq + 1;
        after = seq;
      }
      if (rows.length < PAGE) break;
    }
  }
  const unchained: { id: string }[] = await knex('AuditEvent as a')
    .select('a.id')
    .whereNotExists(knex('audit_chain as c').select(knex.raw('1')).whereRaw('c.audit_event_id = a.id'))
    .orderBy('a.id');
  for (const { id } of unchained) {
    problems.push({ kind: 'inserted', auditEventId: id, detail: `AuditEvent/${id} has no chain entry` });
  }
  const [{ count }] = (await knex('audit_outbox').count({ count: '*' })) as { count: string | number }[];
  return { streams: streams.length, checked, problems, pending: Number(count) };
}
