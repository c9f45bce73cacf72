import { randomUUID } from 'node:crypto';
import type { AuditEvent, Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { refreshIfChanged } from '../storage/custom-search-parameter-store';
import { newId } from '../core/ids';
import { Repository, type RepositoryOptions } from '../storage/repository';
import { type ChainRow, chainHash, GENESIS } from './audit-chain';
import type { Observer } from './audit-event';

/** What a write appends to the chain: the server's AuditEvents, and those the client wrote in it (already stored). */
export interface AuditAppend {
  events: AuditEvent[];
  written?: Resource[];
}

interface Waiting {
  events: AuditEvent[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** How long a read's AuditEvent waits for others to share its commit (docs/audit.md). */
/**
 * Group commit without a fixed wait: a batch is written as soon as no other is being
 * written, and whatever arrives meanwhile goes into the next one. At low load each read
 * waits for one small commit only; under load batches grow by themselves.
 */
const DEFAULT_GROUP_MS = 0;
/** A batch this large is written at once, without waiting for the delay. */
const GROUP_MAX = 200;
/** Outbox rows turned into AuditEvents per transaction: large batches make each row cheap. */
const DRAIN_BATCH = 500;
/** How long `settle` waits for outbox rows that another process is turning into AuditEvents. */
const SETTLE_TIMEOUT_MS = 10_000;

/**
 * Writes AuditEvents through the repository write path (createMany: validation, search
 * columns, history) and appends each to this process's hash chain (audit_chain) in the
 * same database transaction.
 *
 * The chain is one stream per process (a random id at start), so processes never wait for
 * each other. Within the process, appends are serialised from the chain insert to the
 * commit (a promise-chain mutex) so that seq has no gaps and prev_hash is always the hash
 * of a committed row: the head advances only after COMMIT succeeded. A connection is
 * always taken before the mutex, so waiters never hold the mutex while the pool is empty.
 *
 *  - writes: `runWrite` runs the handler and the audit append in ONE transaction;
 *  - reads: `record` queues the event; one INSERT puts the whole queue into audit_outbox
 *    (group commit, a bare table: cheap), and each request resolves once its batch is
 *    committed there, so no read goes unaudited even if the process dies. The outbox is
 *    then drained in the background, up to DRAIN_BATCH rows per transaction, into
 *    AuditEvent resources on this process's chain — by whichever process gets there
 *    first (SKIP LOCKED), so rows a dead process left are drained by the others or by
 *    its successor at start;
 *  - `settle` drains everything before an AuditEvent is read, so an auditor never misses
 *    an access that was already answered.
 */
export class AuditRecorder {
  readonly stream = randomUUID();
  readonly observer: Observer;
  private seq = 0;
  private head = GENESIS;
  private lock: Promise<void> = Promise.resolve();
  private queue: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;
  private closed = false;
  private draining: Promise<void> | undefined;
  private drainAgain = false;
  /** The batch being drained by this process: concurrent callers join it instead of racing for rows. */
  private batchInFlight: Promise<number> | undefined;

  constructor(
    private readonly knex: Knex,
    private readonly repoOptions: RepositoryOptions,
    baseUrl: string,
    private readonly groupMs = DEFAULT_GROUP_MS
  ) {
    this.observer = { baseUrl, stream: this.stream };
  }

  /**
   * `work` (the handler) on a repository bound to one transaction; `eventsFor` builds the
   * AuditEvents from its result, appended in that same transaction before COMMIT. If
   * `work` throws, nothing of it is committed and the error propagates.
   */
  async runWrite<T>(
    work: (repo: Repository) => Promise<T>,
    eventsFor: (result: T, repo: Repository) => AuditAppend | Promise<AuditAppend>
  ): Promise<T> {
    let release: (() => void) | undefined;
    let next: { seq: number; head: string } | undefined;
    try {
      const result = await this.knex.transaction(async (trx) => {
        const repo = new Repository(trx, this.repoOptions);
        const value = await work(repo);
        // Read before the mutex: the AuditEvents a client wrote in this transaction, as stored.
        const { events, written } = await eventsFor(value, repo);
        release = await this.acquire();
        next = await this.append(trx, events, written);
        return value;
      });
      if (next) this.advance(next);
      // A SearchParameter written in it counts from the next request on (as Repository.transaction does).
      await refreshIfChanged(this.knex).catch(() => undefined);
      return result;
    } finally {
      release?.();
    }
  }

  /** Records events outside a write: resolves once they are committed to the outbox (group commit). */
  record(events: AuditEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      this.schedule();
    });
  }

  /** Writes what is queued and stops taking new work (at shutdown, before the pool closes). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.queue.length > 0 || this.flushing) {
      if (!this.flushing) await this.flush();
      else await new Promise((r) => setTimeout(r, 1));
    }
    // What this process put in the outbox becomes AuditEvents before the pool closes (a crash leaves it to the others).
    await this.draining;
    await this.drainAll().catch(() => undefined);
  }

  private schedule(): void {
    if (this.flushing || this.timer) return;
    const delay = this.queue.length >= GROUP_MAX || this.closed ? 0 : this.groupMs;
    if (delay === 0) {
      // The requests of this turn of the event loop still join the batch.
      this.timer = setImmediate(() => {
        this.timer = undefined;
        void this.flush();
      }) as unknown as NodeJS.Timeout;
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delay);
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.queue.length === 0) return;
    this.flushing = true;
    const batch = this.queue;
    this.queue = [];
    try {
      // One statement, committed on its own: no transaction, no chain mutex on the request path.
      const events = batch.flatMap((w) => w.events).map((event) => ({ event: JSON.stringify(event) }));
      if (events.length > 0) await this.knex('audit_outbox').insert(events);
      for (const w of batch) w.resolve();
      this.drainSoon();
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      this.flushing = false;
      if (this.queue.length > 0) this.schedule();
    }
  }

  /** Starts a background drain, or asks the running one to go round again. */
  private drainSoon(): void {
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = (async () => {
      do {
        this.drainAgain = false;
        await this.drainAll();
      } while (this.drainAgain && !this.closed);
    })()
      // A failed drain leaves the rows in the outbox: the next one (or another process) takes them.
      .catch(() => undefined)
      .finally(() => {
        this.draining = undefined;
      });
  }

  /** Drains the outbox at start: rows a process that died left behind. */
  start(): void {
    this.drainSoon();
  }

  /**
   * Turns outbox rows into AuditEvents until none is left that no other process holds;
   * resolves with the number this process drained.
   */
  private async drainAll(): Promise<number> {
    let total = 0;
    for (;;) {
      const drained = await this.sharedBatch();
      total += drained;
      if (drained < DRAIN_BATCH) return total;
    }
  }

  private sharedBatch(): Promise<number> {
    return (this.batchInFlight ??= this.drainBatch().finally(() => {
      this.batchInFlight = undefined;
    }));
  }

  private async drainBatch(): Promise<number> {
    let release: (() => void) | undefined;
    let next: { seq: number; head: string } | undefined;
    let count = 0;
    try {
      await this.knex.transaction(async (trx) => {
        const rows: { id: string; event: AuditEvent }[] = (
          await trx.raw(
            `DELETE FROM audit_outbox WHERE id IN (SELECT id FROM audit_outbox ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING id, event`,
            [DRAIN_BATCH]
          )
        ).rows;
        count = rows.length;
        if (count === 0) return;
        // RETURNING has no order: the chain follows the order of recording.
        rows.sort((a, b) => Number(a.id) - Number(b.id));
        // The connection first, then the mutex (see the class comment).
        release = await this.acquire();
        next = await this.append(trx, rows.map((r) => r.event));
      });
      if (next) this.advance(next);
      return count;
    } finally {
      release?.();
    }
  }

  /**
   * Waits until every AuditEvent recorded so far (here, or committed to the outbox by any
   * process) is an AuditEvent resource: before AuditEvents are read or searched.
   */
  async settle(): Promise<void> {
    // Behind everything queued so far (batches commit in order); under load the queue is never empty.
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ events: [], resolve, reject });
      this.schedule();
    });
    // Only what was recorded before this point: under load the outbox is never empty.
    const newest = (await this.knex('audit_outbox').max({ id: 'id' }).first()) as { id: string | null } | undefined;
    if (!newest?.id) return;
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    for (;;) {
      // A batch already in flight may have started before our rows: it is joined, then one more taken.
      const drained = await this.drainAll();
      const left = await this.knex('audit_outbox').where('id', '<=', newest.id).first('id');
      if (!left || Date.now() > deadline) return;
      // Nothing left for us to take: the rows are held by another process's drain; wait for its commit.
      if (drained === 0) await new Promise((r) => setTimeout(r, 2));
    }
  }

  /**
   * Inserts the AuditEvents (createMany: many rows per statement) and their chain rows
   * after the committed head; `written`: AuditEvents a client created in this transaction
   * (already stored, as stored), chained too.
   */
  private async append(trx: Knex.Transaction, events: AuditEvent[], written: Resource[] = []): Promise<{ seq: number; head: string }> {
    if (events.length === 0 && written.length === 0) return { seq: this.seq, head: this.head };
    const repo = new Repository(trx, this.repoOptions);
    // Through JSON: optional fields left undefined by the builders are dropped, as they would be when stored.
    const results = await repo.createMany(events.map((e) => JSON.parse(JSON.stringify({ ...e, id: newId() })) as Resource & { id: string }));
    const stored = [...written, ...results.map((r) => r.version.resource as Resource)];
    let prev = this.head;
    let seq = this.seq;
    const rows: ChainRow[] = stored.map((r) => {
      const hash = chainHash(prev, r as unknown as Record<string, unknown>);
      const row = { stream: this.stream, seq: ++seq, audit_event_id: r.id as string, hash, prev_hash: prev };
      prev = hash;
      return row;
    });
    await trx('audit_chain').insert(rows);
    return { seq, head: prev };
  }

  private advance(next: { seq: number; head: string }): void {
    this.seq = next.seq;
    this.head = next.head;
  }

  /** A FIFO mutex: resolves with its release function. */
  private acquire(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const previous = this.lock;
    this.lock = previous.then(() => held);
    return previous.then(() => release);
  }
}
