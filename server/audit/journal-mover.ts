import type { Knex } from 'knex';
import { isOperationOutcomeError } from '../core/outcome';
import type { Repository } from '../storage/repository';
import { NewResourceError, writeNewResources } from '../storage/write-new-resources';
import type { AuditJournal, JournalEvent, JournalSegment } from './audit-journal';

/**
 * Events per INSERT statement. PostgreSQL's cost per AuditEvent row falls with the batch
 * (84 µs at 250 against 140 µs at 4, docs/audit.md), but each chunk is validated and
 * indexed without yielding: at 250 that stalled the requests being answered for ~20 ms
 * (p99 of reads at 8 clients 26 ms, against 17 ms at 50, same throughput).
 */
const CHUNK = 50;
/** A journal holding this many events is moved at once, without waiting for the timer. */
const KICK_AT = 1000;
/** How often the folder is searched for orphans after the start (a process on another host may have died). */
const CLAIM_EVERY_MS = 10_000;

interface Waiter {
  upTo: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Moves the read AuditEvents of an AuditJournal into PostgreSQL through the repository
 * write path (validation, search columns, history, the hash chain's queue), in batches,
 * every `intervalMs` or as soon as KICK_AT events wait; then removes the segment. A
 * segment whose move failed is retried, storing only the events not yet stored (a
 * statement may have committed before the failure), as are orphans claimed at start.
 */
export class JournalMover {
  private timer: NodeJS.Timeout | undefined;
  private moving: Promise<void> | undefined;
  /** Rotated segments not yet stored, oldest first; `retry` when some of their events may be stored, `own` unless claimed from a process that died. */
  private unstored: (JournalSegment & { retry: boolean; own: boolean })[] = [];
  private appended = 0;
  private stored = 0;
  private waiters: Waiter[] = [];

  constructor(
    /** Writes go autocommitted, one statement per chunk, as a group commit's did. */
    private readonly knex: Knex,
    private readonly repo: Repository,
    private readonly journal: AuditJournal,
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void
  ) {}

  /** Appends to the journal (synchronously: once it returns, the events outlive the process). */
  append(events: JournalEvent[]): void {
    this.journal.append(events);
    this.appended += events.length;
    if (this.journal.pending >= KICK_AT) void this.kick();
  }

  /** Events appended and not yet stored. */
  get backlog(): number {
    return this.appended - this.stored;
  }

  /** Stores what processes that died left in their journals, then starts the timer. */
  async start(): Promise<void> {
    this.claimOrphans();
    if (this.unstored.length > 0) await this.kick();
    let lastClaim = Date.now();
    this.timer = setInterval(() => {
      this.journal.touch(this.unstored);
      if (Date.now() - lastClaim >= CLAIM_EVERY_MS) {
        lastClaim = Date.now();
        this.claimOrphans();
      }
      if (this.journal.pending > 0 || this.unstored.length > 0) void this.kick();
    }, this.intervalMs);
    this.timer.unref();
  }

  private claimOrphans(): void {
    try {
      for (const segment of this.journal.claimOrphans()) this.unstored.push({ ...segment, retry: true, own: false });
    } catch (err) {
      this.onError(err);
    }
  }

  /** Resolves once every event appended before the call is stored (and searchable). */
  settled(): Promise<void> {
    const upTo = this.appended;
    if (this.stored >= upTo) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ upTo, resolve, reject });
      void this.kick();
    });
  }

  /** Stores what is left and closes the journal; on failure the segments stay for the next process. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.moving;
    if (this.journal.pending > 0 || this.unstored.length > 0) await this.kick();
    this.journal.close();
  }

  /** Runs a move unless one runs; resolves when the move that covers the current events ends. */
  private kick(): Promise<void> {
    if (this.moving) return this.moving.then(() => (this.journal.pending > 0 ? this.kick() : undefined));
    this.moving = this.move().finally(() => {
      this.moving = undefined;
    });
    return this.moving;
  }

  private async move(): Promise<void> {
    for (const segment of this.journal.rotate()) this.unstored.push({ ...segment, retry: false, own: true });
    try {
      while (this.unstored.length > 0) {
        const next = this.unstored[0];
        await this.store(next.events, next.retry);
        this.journal.remove(next);
        this.unstored.shift();
        // Orphans' events were not appended here: only this journal's count towards settled().
        if (next.own) this.stored += next.events.length;
        this.waiters = this.waiters.filter((w) => (w.upTo <= this.stored ? (w.resolve(), false) : true));
      }
    } catch (err) {
      for (const s of this.unstored) s.retry = true;
      const waiting = this.waiters;
      this.waiters = [];
      for (const w of waiting) w.reject(err);
      this.onError(err);
    }
  }

  private async store(events: JournalEvent[], retry: boolean): Promise<void> {
    for (let i = 0; i < events.length; i += CHUNK) {
      let chunk = events.slice(i, i + CHUNK);
      if (retry) chunk = await this.notStored(chunk);
      while (chunk.length > 0) {
        try {
          await writeNewResources(this.knex, chunk);
          break;
        } catch (err) {
          const refused = refusedEvent(err, chunk);
          if (!refused) throw err;
          // Retried, it would be refused again and hold up the journal for good: the log keeps it instead.
          this.onError(new Error(`an AuditEvent was refused by the write path and is kept in this log only: ${JSON.stringify(refused)}`, { cause: err }));
          chunk = chunk.filter((e) => e !== refused);
        }
      }
    }
  }

  private async notStored(chunk: JournalEvent[]): Promise<JournalEvent[]> {
    const ids = chunk.map((e) => e.id);
    const present = new Set(
      await this.repo.matchingIds({ resourceType: 'AuditEvent', filters: [{ kind: 'id', not: false, ids }], sort: [], count: ids.length, offset: 0, total: 'none', warnings: [] })
    );
    return chunk.filter((e) => !present.has(e.id));
  }
}

/**
 * The event the write path refused as invalid (400/422), if that is why the chunk failed;
 * the chunk's statement is built only once every event passed, so nothing of it was stored.
 */
function refusedEvent(err: unknown, chunk: JournalEvent[]): JournalEvent | undefined {
  if (!(err instanceof NewResourceError) || !isOperationOutcomeError(err.cause)) return undefined;
  return err.cause.status === 400 || err.cause.status === 422 ? chunk[err.position] : undefined;
}
