import { randomUUID } from 'node:crypto';
import type { AuditEvent, Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { refreshIfChanged } from '../storage/custom-search-parameter-store';
import { newId } from '../core/ids';
import { Repository, type RepositoryOptions } from '../storage/repository';
import { type ChainRow, chainHash, GENESIS } from './audit-chain';
import type { Observer } from './audit-event';

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
 *  - reads: `record` queues the event; every few ms one transaction inserts the whole
 *    queue (group commit), and each request resolves once its batch committed.
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
  async runWrite<T>(work: (repo: Repository) => Promise<T>, eventsFor: (result: T) => { events: AuditEvent[]; written?: Resource[] }): Promise<T> {
    let release: (() => void) | undefined;
    let next: { seq: number; head: string } | undefined;
    try {
      const result = await this.knex.transaction(async (trx) => {
        const value = await work(new Repository(trx, this.repoOptions));
        release = await this.acquire();
        const { events, written } = eventsFor(value);
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

  /** Records events outside a write: resolves once they are committed (group commit). */
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
    let release: (() => void) | undefined;
    let next: { seq: number; head: string } | undefined;
    try {
      await this.knex.transaction(async (trx) => {
        // The connection first, then the mutex (see the class comment): knex runs this
        // callback only once it holds a connection and BEGIN has completed.
        release = await this.acquire();
        next = await this.append(trx, batch.flatMap((w) => w.events));
      });
      if (next) this.advance(next);
      release?.();
      release = undefined;
      for (const w of batch) w.resolve();
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      release?.();
      this.flushing = false;
      if (this.queue.length > 0) this.schedule();
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
