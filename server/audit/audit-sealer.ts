import type { Knex } from 'knex';
import { GENESIS, linkHash } from './audit-chain';
import type { ChainAnchors } from './chain-anchors';

/** Queued AuditEvents linked per transaction: large batches make each link cheap. */
const BATCH = 1000;
/**
 * How often the queue is linked. Not after every write: each pass is a transaction of its
 * own (four round trips), and under load one pass every few hundred ms links hundreds.
 */
const INTERVAL_MS = 250;
/**
 * Rows linked (deleted from the queue) between two VACUUMs of it. With autovacuum off (as
 * on this project's machines) the queue's dead rows were never reclaimed: after 200,000
 * events the look below took 1.5–10 ms and the batch's DELETE 2.5 ms, both growing with
 * every event since the server started; after a VACUUM (27 ms then), 0.2–0.4 ms.
 */
const VACUUM_EVERY = 20_000;
/**
 * A process that links fewer rows than VACUUM_EVERY (a quiet server, or one of many short
 * lived ones) vacuums what it linked this long after its last VACUUM: 142,000 dead rows
 * left by such processes made the idle look below take 8–9 ms, four times a second.
 */
const VACUUM_AFTER_MS = 60_000;

/**
 * Takes (deletes and returns) the oldest queued rows no other process holds, at most `?`.
 * The batch is taken as an array (an InitPlan, run once) and deleted through the primary
 * key. As `seq IN (SELECT …)`, the queue's statistics (a few rows, or none, as its last
 * VACUUM left them) made PostgreSQL re-run the locking subquery for every row it deleted:
 * 48 ms for a batch of 600 and 9 s for 10,000, against 2.2 ms and 29 ms this way.
 */
export const TAKE_BATCH_SQL =
  'DELETE FROM audit_unsealed WHERE seq = ANY(ARRAY(SELECT seq FROM audit_unsealed ORDER BY seq LIMIT ? FOR UPDATE SKIP LOCKED)) ' +
  'RETURNING seq, audit_event_id, digest';

/**
 * Whether anything waits in the queue: its first row in `seq` order, through the primary
 * key, whose entries for linked (deleted) rows are marked dead after one visit. Without
 * the order PostgreSQL reads the heap from its start, through every row linked since the
 * last VACUUM, on every look (2.1 ms at 67,000 such rows, against 0.14 ms).
 */
export function queueLook(knex: Knex): Knex.QueryBuilder {
  return knex('audit_unsealed').orderBy('seq').first('seq');
}

/**
 * Links the AuditEvents queued in audit_unsealed (every AuditEvent the repository writes
 * is queued by the statement that writes it, with the digest of its stored content) into
 * this process's hash chain: `hash = SHA-256(prev_hash ‖ digest)`, scheme 2.
 *
 * One stream per process (a random id at start), so processes never wait for each
 * other; whichever process gets to a queued row first links it (SKIP LOCKED), so the rows
 * of a process that died are linked by the others or by its successor. Within the process
 * one batch runs at a time, and the in-memory head moves only after its COMMIT: seq has no
 * gaps and prev_hash always names a committed row. Requests never wait for this.
 */
export interface SealerOptions {
  /** Queued rows linked per transaction (BATCH). */
  batch?: number;
  /** Told when a pass fails (its rows stay queued for the next one) or an anchor cannot be written: an operator should know. */
  onError?: (err: unknown) => void;
  vacuumEvery?: number;
  /** VACUUM_AFTER_MS. */
  vacuumAfterMs?: number;
  /** Where the stream's head is written after each commit (chain-anchors.ts). */
  anchors?: ChainAnchors;
}

export class AuditSealer {
  private seq = 0;
  private head = GENESIS;
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  private linkedSinceVacuum = 0;
  private lastVacuum = Date.now();
  private readonly vacuumAfterMs: number;
  private readonly batch: number;
  private readonly onError: (err: unknown) => void;
  private readonly vacuumEvery: number;
  private readonly anchors: ChainAnchors | undefined;

  constructor(
    private readonly knex: Knex,
    readonly stream: string,
    options: SealerOptions = {}
  ) {
    this.batch = options.batch ?? BATCH;
    this.onError = options.onError ?? (() => undefined);
    this.vacuumEvery = options.vacuumEvery ?? VACUUM_EVERY;
    this.vacuumAfterMs = options.vacuumAfterMs ?? VACUUM_AFTER_MS;
    this.anchors = options.anchors;
  }

  /** Links what is queued now and then every INTERVAL_MS. */
  start(intervalMs = INTERVAL_MS): void {
    this.timer = setInterval(() => this.soon(), intervalMs);
    this.timer.unref();
    this.soon();
  }

  /** Starts linking, or asks the running pass to go round once more. */
  soon(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.sealQueued();
      } while (this.again && !this.closed);
    })()
      // A failed batch leaves its rows queued: the next pass (or another process) takes them.
      .catch((err: unknown) => this.onError(err))
      .finally(() => {
        this.running = undefined;
      });
  }

  /**
   * Resolves once everything queued before the call is linked (by this process, or by
   * another one that held the rows): for tests and shutdown.
   */
  async sealed(timeoutMs = 10_000): Promise<void> {
    // A pass that has committed its links (the queue looks empty) may still be writing its anchor.
    await this.running;
    await this.inFlight?.catch(() => undefined);
    const newest = (await this.knex('audit_unsealed').max({ seq: 'seq' }).first()) as { seq: string | null } | undefined;
    if (!newest?.seq) return;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.running;
      const linked = await this.sealQueued();
      const left = await this.knex('audit_unsealed').where('seq', '<=', newest.seq).orderBy('seq').first('seq');
      if (!left || Date.now() > deadline) return;
      // Held by another process's batch: wait for its commit.
      if (linked === 0) await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** Stops the timer and links what is queued (a crash leaves it to the other processes). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await this.sealQueued().catch(() => undefined);
  }

  private inFlight: Promise<number> | undefined;

  /** Batches until the queue holds nothing this process can take; the number linked. */
  private async sealQueued(): Promise<number> {
    let total = 0;
    for (;;) {
      // A batch already running is joined, not raced: the chain advances one batch at a time.
      const linked = await (this.inFlight ??= this.sealBatch().finally(() => (this.inFlight = undefined)));
      total += linked;
      this.linkedSinceVacuum += linked;
      const due = this.linkedSinceVacuum > 0 && Date.now() - this.lastVacuum >= this.vacuumAfterMs;
      if (this.linkedSinceVacuum >= this.vacuumEvery || due) await this.vacuumQueue();
      if (linked < this.batch) return total;
    }
  }

  /**
   * Reclaims the queue's dead rows whatever autovacuum does. SKIP_LOCKED: when another
   * process or autovacuum is at it, this one need not wait.
   */
  private async vacuumQueue(): Promise<void> {
    this.linkedSinceVacuum = 0;
    this.lastVacuum = Date.now();
    await this.knex.raw('VACUUM (SKIP_LOCKED) audit_unsealed').catch((err: unknown) => this.onError(err));
  }

  private async sealBatch(): Promise<number> {
    // One cheap look before a transaction: an idle server looks four times a second.
    if (!(await queueLook(this.knex))) return 0;
    let next: { seq: number; head: string; auditEventId: string } | undefined;
    let count = 0;
    await this.knex.transaction(async (trx) => {
      const rows: { seq: string; audit_event_id: string; digest: string }[] = (await trx.raw(TAKE_BATCH_SQL, [this.batch])).rows;
      count = rows.length;
      if (count === 0) return;
      // RETURNING has no order: the chain follows the order of queueing.
      rows.sort((a, b) => Number(a.seq) - Number(b.seq));
      let prev = this.head;
      let seq = this.seq;
      const links = rows.map((r) => {
        const hash = linkHash(prev, r.digest);
        const link = { stream: this.stream, seq: ++seq, audit_event_id: r.audit_event_id, hash, prev_hash: prev, scheme: 2 };
        prev = hash;
        return link;
      });
      await trx.raw(
        `INSERT INTO audit_chain (stream, seq, audit_event_id, hash, prev_hash, scheme)
         SELECT ?, s, e, h, p, 2 FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[]) AS t(s, e, h, p)`,
        [this.stream, links.map((l) => l.seq), links.map((l) => l.audit_event_id), links.map((l) => l.hash), links.map((l) => l.prev_hash)]
      );
      next = { seq, head: prev, auditEventId: links[links.length - 1].audit_event_id };
    });
    if (next) {
      this.seq = next.seq;
      this.head = next.head;
      // After COMMIT: an anchor never names a row that could still roll back. One that
      // fails (or a death before it) leaves the previous anchor, which is still true.
      await this.anchors
        ?.record({ stream: this.stream, seq: next.seq, hash: next.head, auditEventId: next.auditEventId, sealedAt: new Date().toISOString() })
        .catch((err: unknown) => this.onError(err));
    }
    return count;
  }
}
