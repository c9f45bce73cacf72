import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { digestSql } from '../storage/sealing-queue';
import type { ChainAnchor } from './chain-anchors';

/** The first prev_hash of every stream. */
export const GENESIS = '0'.repeat(64);

/**
 * Scheme 1 (chain rows written before migration 008). What the chain hashes: the stored content of the AuditEvent without meta.versionId and
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

/** Scheme 1: hash = SHA-256(prev_hash ‖ canonical JSON of the hashed content), hex. */
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

/** Scheme 2 (migration 008): `hash = SHA-256(prev_hash ‖ digest)`, digest = SHA-256 hex of the stored jsonb's text. */
export function linkHash(prevHash: string, digest: string): string {
  return createHash('sha256').update(prevHash).update(digest).digest('hex');
}

export interface ChainProblem {
  kind: 'modified' | 'removed' | 'inserted' | 'broken-link' | 'truncated' | 'rewritten';
  stream?: string;
  seq?: number;
  auditEventId: string;
  detail: string;
}

export interface VerifyReport {
  streams: number;
  checked: number;
  problems: ChainProblem[];
  /** AuditEvents stored and queued, not linked yet (a running server links them within moments). */
  pending: number;
  /** Streams checked against an anchor kept outside the database (chain-anchors.ts). */
  anchored: number;
  /** Streams in the database without an anchor among those given (sealed by processes whose anchors are elsewhere, or before anchors existed). */
  unanchored: number;
}

const PAGE = 5000;

type VerifiedRow = ChainRow & { scheme: number; content: Record<string, unknown> | null; digest: string | null; deleted: boolean | null };

/**
 * Walks every stream in seq order and recomputes each hash from the AuditEvent's stored
 * content: a changed content is `modified`, a chain row without its AuditEvent `removed`,
 * a link whose prev_hash is not the previous row's hash (or a gap in seq) `broken-link`.
 * Queued (not yet linked) AuditEvents are checked against the digest taken when they were
 * stored. AuditEvents that neither a chain row nor the queue names are `inserted`.
 * Each anchor (the head a sealer committed, kept outside the database) must still be in
 * its stream with the same hash: a stream that ends before it is `truncated`, one whose
 * row there has another hash was recomputed after the fact, `rewritten`.
 */
export async function verifyAuditChain(knex: Knex, anchors: readonly ChainAnchor[] = []): Promise<VerifyReport> {
  const problems: ChainProblem[] = [];
  const streams: { stream: string }[] = await knex('audit_chain').distinct('stream').orderBy('stream');
  let checked = 0;
  for (const { stream } of streams) {
    let prev = GENESIS;
    let expectedSeq = 1;
    for (let after = 0; ; ) {
      const rows: VerifiedRow[] = await knex('audit_chain as c')
        .leftJoin('AuditEvent as a', 'a.id', 'c.audit_event_id')
        .select('c.stream', 'c.seq', 'c.audit_event_id', 'c.hash', 'c.prev_hash', 'c.scheme', 'a.deleted')
        // Scheme 1 hashes the content in this process; scheme 2 the digest PostgreSQL computes, as when it was stored.
        .select(knex.raw(`CASE WHEN c.scheme = 1 THEN a.content END AS content`))
        .select(knex.raw(`CASE WHEN c.scheme = 2 AND a.content IS NOT NULL THEN ${digestSql('a.content')} END AS digest`))
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
        const present = row.deleted === false && (row.content !== null || row.digest !== null);
        if (!present) {
          problems.push({ ...at, kind: 'removed', detail: `AuditEvent/${row.audit_event_id} is gone` });
        } else if (recomputed(row) !== row.hash) {
          problems.push({ ...at, kind: 'modified', detail: `AuditEvent/${row.audit_event_id} does not match its hash` });
        }
        prev = row.hash;
        expectedSeq = seq + 1;
        after = seq;
      }
      if (rows.length < PAGE) break;
    }
  }
  const queued: { audit_event_id: string; digest: string; now: string | null; deleted: boolean | null }[] = await knex('audit_unsealed as u')
    .leftJoin('AuditEvent as a', 'a.id', 'u.audit_event_id')
    .select('u.audit_event_id', 'u.digest', 'a.deleted', knex.raw(`${digestSql('a.content')} AS now`))
    .orderBy('u.seq');
  for (const q of queued) {
    if (q.now === null || q.deleted) {
      problems.push({ kind: 'removed', auditEventId: q.audit_event_id, detail: `AuditEvent/${q.audit_event_id} (queued for the chain) is gone` });
    } else if (q.now !== q.digest) {
      problems.push({ kind: 'modified', auditEventId: q.audit_event_id, detail: `AuditEvent/${q.audit_event_id} (queued for the chain) changed since it was stored` });
    }
  }
  const unchained: { id: string }[] = await knex('AuditEvent as a')
    .select('a.id')
    .whereNotExists(knex('audit_chain as c').select(knex.raw('1')).whereRaw('c.audit_event_id = a.id'))
    .whereNotExists(knex('audit_unsealed as u').select(knex.raw('1')).whereRaw('u.audit_event_id = a.id'))
    .orderBy('a.id');
  for (const { id } of unchained) {
    problems.push({ kind: 'inserted', auditEventId: id, detail: `AuditEvent/${id} has no chain entry` });
  }
  problems.push(...(await anchorProblems(knex, anchors)));
  const anchoredStreams = new Set(anchors.map((a) => a.stream));
  return {
    streams: streams.length,
    checked,
    problems,
    pending: queued.length,
    anchored: anchoredStreams.size,
    unanchored: streams.filter((s) => !anchoredStreams.has(s.stream)).length,
  };
}

async function anchorProblems(knex: Knex, anchors: readonly ChainAnchor[]): Promise<ChainProblem[]> {
  const problems: ChainProblem[] = [];
  for (const anchor of anchors) {
    const at = { stream: anchor.stream, seq: anchor.seq, auditEventId: anchor.auditEventId };
    const row: { hash: string } | undefined = await knex('audit_chain').where({ stream: anchor.stream, seq: anchor.seq }).first('hash');
    if (!row) {
      const last = (await knex('audit_chain').where({ stream: anchor.stream }).max({ seq: 'seq' }).first()) as { seq: string | null } | undefined;
      const end = last?.seq == null ? 'has no entries' : `ends at seq ${last.seq}`;
      problems.push({ ...at, kind: 'truncated', detail: `the stream ${end}, but seq ${anchor.seq} (AuditEvent/${anchor.auditEventId}) was sealed at ${anchor.sealedAt}` });
    } else if (row.hash !== anchor.hash) {
      problems.push({ ...at, kind: 'rewritten', detail: `the hash at seq ${anchor.seq} is not the one sealed at ${anchor.sealedAt}: the chain was recomputed` });
    }
  }
  return problems;
}

function recomputed(row: VerifiedRow): string {
  return row.scheme === 1 ? chainHash(row.prev_hash, row.content as Record<string, unknown>) : linkHash(row.prev_hash, row.digest as string);
}
