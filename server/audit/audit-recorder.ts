import { randomUUID } from 'node:crypto';
import type { AuditEvent, Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { refreshRegistriesAfterCommit } from '../storage/registries-after-commit';
import { newId } from '../core/ids';
import { Repository, type RepositoryOptions } from '../storage/repository';
import { writeNewResources } from '../storage/write-new-resources';
import type { WriteCompanion, WriteResult } from '../storage/write-resource';
import { AuditJournal } from './audit-journal';
import { AuditSealer } from './audit-sealer';
import type { ChainAnchors } from './chain-anchors';
import { JournalMover } from './journal-mover';
import type { Observer } from './audit-event';

interface Waiting {
  events: AuditEvent[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A batch this large is written at once. */
const GROUP_MAX = 200;
/**
 * How long a batch may wait for the reads still being answered to join it. Each batch is
 * a statement (a round trip, a commit, ~1 ms of CPU between this process and PostgreSQL
 * here) whatever its size, so under load fewer, larger batches are what keeps audit cheap;
 * with nothing else in flight a batch never waits.
 */
const GROUP_WAIT_MS = 2;
/** Where reads' AuditEvents go before the answer (docs/audit.md, "When it is written"). */
export interface JournalOptions {
  /** This database's journal folder (audit-journal.ts, journalDirFor). */
  dir: string;
  /** fdatasync each batch: the events then outlive a crash of the machine, not only of the process. */
  sync: boolean;
  /** How often the journal is moved into PostgreSQL under a trickle (250 ms by default). */
  intervalMs?: number;
}

export interface AuditRecorderOptions {
  /** Told when storing reads' events or linking the chain failed (both are retried). */
  onError?: (err: unknown) => void;
  /** GROUP_WAIT_MS unless a test needs the batching independent of the machine's speed. */
  groupWaitMs?: number;
  /** Reads' events go to this journal before the answer; without, they are inserted. */
  journal?: JournalOptions;
  /** The chains' heads are written here after each seal, outside the database (chain-anchors.ts). */
  anchors?: ChainAnchors;
}

/** Rows of the outbox (migration 006, before sealing) turned into AuditEvents per transaction at start. */
const LEGACY_BATCH = 500;

/**
 * Writes AuditEvents through the repository write path (validation, search columns,
 * history; the statement also queues each for the hash chain, see storage/sealing-queue.ts)
 * and lets the AuditSealer link them into this process's chain in the background.
 *
 *  - writes: `runWrite` runs the handler and its AuditEvent in ONE transaction;
 *  - reads: `record` queues the event; the queue is written as one batch (group commit
 *    without a fixed wait: a batch is written as soon as no other is in flight, and what
 *    arrives meanwhile forms the next), and each request resolves once its batch is
 *    written. With a journal (the default), the batch is appended to this process's
 *    journal file, and a JournalMover stores it in PostgreSQL in larger batches shortly
 *    after; without, one multi-row INSERT committed on its own writes it. Either way an
 *    answered read has its AuditEvent even if the process dies right after.
 */
export class AuditRecorder {
  readonly stream = randomUUID();
  readonly observer: Observer;
  private readonly sealer: AuditSealer;
  private readonly mover: JournalMover | undefined;
  private queue: Waiting[] = [];
  private timer: { timeout: NodeJS.Timeout } | { immediate: NodeJS.Immediate } | undefined;
  private flushing = false;
  private closed = false;
  /** Reads being answered that will record an event (see `expect`). */
  private expected = 0;
  /** When the oldest queued event arrived. */
  private oldest = 0;

  private readonly groupWaitMs: number;
  /** Where this process's chain head is anchored, if anywhere. */
  readonly anchorDir: string | undefined;

  constructor(
    private readonly knex: Knex,
    private readonly repoOptions: RepositoryOptions,
    baseUrl: string,
    { onError, groupWaitMs = GROUP_WAIT_MS, journal, anchors }: AuditRecorderOptions = {}
  ) {
    this.observer = { baseUrl, stream: this.stream };
    this.groupWaitMs = groupWaitMs;
    this.sealer = new AuditSealer(knex, this.stream, { onError, anchors });
    this.anchorDir = anchors?.dir;
    this.mover =
      journal &&
      new JournalMover(knex, new Repository(knex, repoOptions), new AuditJournal(journal.dir, this.stream, journal.sync), journal.intervalMs ?? 250, onError ?? (() => undefined));
  }

  /**
   * `work` (the handler) on a repository bound to one transaction; `eventsFor` builds the
   * AuditEvents from its result, written in that same transaction before COMMIT. If
   * `work` throws, nothing of it is committed and the error propagates.
   */
  async runWrite<T>(work: (repo: Repository) => Promise<T>, eventsFor: (result: T) => AuditEvent[]): Promise<T> {
    const result = await this.knex.transaction(async (trx) => {
      const repo = new Repository(trx, this.repoOptions);
      const value = await work(repo);
      await repo.createMany(eventsFor(value).map(withId));
      return value;
    });
    // A SearchParameter written in it counts from the next request on (as Repository.transaction does).
    await refreshRegistriesAfterCommit(this.knex).catch(() => undefined);
    return result;
  }

  /**
   * A single-resource write (create, update, patch, delete) whose AuditEvent rides on the
   * write's own statement (WriteCompanion): resource, history and AuditEvent commit
   * together, one round trip, no BEGIN/COMMIT — or together inside the transaction a
   * conditional write opens. `eventsFor` builds the events of the answer a write
   * returning `result` gives. When nothing was written (a conditional create that
   * matched, a delete of nothing), the events of the actual answer are recorded as a
   * read's are, before the answer.
   */
  async runFusedWrite<T>(
    work: (repo: Repository) => Promise<T>,
    eventsFor: (result: WriteResult) => AuditEvent[],
    eventsForAnswer: (value: T) => AuditEvent[]
  ): Promise<T> {
    const companion: WriteCompanion = { resourceType: 'AuditEvent', rowsFor: (result) => eventsFor(result).map(withId), written: 0 };
    const value = await work(new Repository(this.knex, this.repoOptions, companion));
    if (companion.written === 0) await this.record(eventsForAnswer(value));
    return value;
  }

  /**
   * Announces a read that will `record` its event once answered (pass the returned
   * function as `record`'s `arrived`): a batch about to be written waits briefly for it.
   */
  expect(): () => void {
    this.expected++;
    let done = false;
    return () => {
      if (!done) this.expected--;
      done = true;
    };
  }

  /** Records events outside a write: resolves once they are committed (group commit). */
  record(events: AuditEvent[], arrived?: () => void): Promise<void> {
    arrived?.();
    if (events.length === 0) {
      this.schedule();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      if (this.queue.length === 0) this.oldest = Date.now();
      this.queue.push({ events, resolve, reject });
      this.schedule();
    });
  }

  /**
   * Resolves once the AuditEvents recorded before the call are in PostgreSQL (at once
   * without a journal): what a request that may answer AuditEvents waits for, so that an
   * auditor sees every access this process has answered.
   */
  settled(): Promise<void> {
    return this.mover ? this.mover.settled() : Promise.resolve();
  }

  /** Reads' AuditEvents in the journal not yet stored in PostgreSQL (0 without a journal). */
  journalBacklog(): number {
    return this.mover?.backlog ?? 0;
  }

  /** Links the AuditEvents recorded before the call into the chain (tests; see AuditSealer.sealed). */
  async sealed(): Promise<void> {
    await this.settled();
    return this.sealer.sealed();
  }

  /**
   * At start: stores what processes that died left in their journals, links what they left
   * queued, and moves a pre-sealing outbox over.
   */
  async start(): Promise<void> {
    await this.moveLegacyOutbox();
    await this.mover?.start();
    this.sealer.start();
  }

  /** Writes what is queued and stops taking new work (at shutdown, before the pool closes). */
  async close(): Promise<void> {
    this.closed = true;
    this.cancelTimer();
    while (this.queue.length > 0 || this.flushing) {
      if (!this.flushing) await this.flush();
      else await new Promise((r) => setTimeout(r, 1));
    }
    await this.mover?.close();
    await this.sealer.close();
  }

  private schedule(): void {
    if (this.flushing || this.queue.length === 0) return;
    if (this.queue.length >= GROUP_MAX || this.closed) {
      this.cancelTimer();
      void this.flush();
      return;
    }
    const waited = Date.now() - this.oldest;
    // A journal's append is one write(2): nothing to gain by waiting for more.
    if (!this.mover && this.expected > 0 && waited < this.groupWaitMs) {
      // Reads still being answered join this batch (the deadline counts from its oldest event).
      this.arm('timeout', this.groupWaitMs - waited);
    } else {
      // Nobody else to wait for: the requests of this turn of the event loop still join the batch.
      this.arm('immediate');
    }
  }

  /** Flushes on a timer of this kind, unless one of that kind is already set. */
  private arm(kind: 'timeout' | 'immediate', ms = 0): void {
    if (this.timer && kind in this.timer) return;
    this.cancelTimer();
    const fire = (): void => {
      this.timer = undefined;
      void this.flush();
    };
    this.timer = kind === 'timeout' ? { timeout: setTimeout(fire, ms) } : { immediate: setImmediate(fire) };
  }

  private cancelTimer(): void {
    if (!this.timer) return;
    if ('timeout' in this.timer) clearTimeout(this.timer.timeout);
    else clearImmediate(this.timer.immediate);
    this.timer = undefined;
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.queue.length === 0) return;
    this.flushing = true;
    this.cancelTimer();
    const batch = this.queue;
    this.queue = [];
    try {
      const events = batch.flatMap((w) => w.events).map(withId);
      // Autocommitted statements, no transaction: every event stands on its own.
      if (this.mover) this.mover.append(events);
      else await writeNewResources(this.knex, events);
      for (const w of batch) w.resolve();
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      this.flushing = false;
      if (this.queue.length > 0) this.schedule();
    }
  }

  /** Reads' AuditEvents that a server from before sealing (migration 008) left in its outbox. */
  private async moveLegacyOutbox(): Promise<void> {
    for (;;) {
      const moved = await this.knex.transaction(async (trx) => {
        // As the sealer takes its batch (audit-sealer.ts, TAKE_BATCH_SQL): an array, so that the locking subquery runs once.
        const rows: { id: string; event: AuditEvent }[] = (
          await trx.raw(`DELETE FROM audit_outbox WHERE id = ANY(ARRAY(SELECT id FROM audit_outbox ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED)) RETURNING id, event`, [
            LEGACY_BATCH,
          ])
        ).rows;
        rows.sort((a, b) => Number(a.id) - Number(b.id));
        if (rows.length > 0) await writeNewResources(trx, rows.map((r) => withId(r.event)));
        return rows.length;
      });
      if (moved < LEGACY_BATCH) return;
    }
  }
}

/** A new id; optional fields the builders left undefined are dropped, as they are when stored. */
function withId(event: AuditEvent): Resource & { id: string } {
  return withoutUndefined({ ...event, id: newId() }) as Resource & { id: string };
}

/** U+0000 and unpaired surrogates: a request can carry them into an error text or a URL; PostgreSQL's jsonb holds neither. */
const UNSTORABLE = /\u0000|\p{Cs}/gu;

/**
 * A copy of plain JSON data without undefined members (what a JSON round trip gives, at a
 * fraction of its cost), with unstorable characters replaced by U+FFFD.
 */
function withoutUndefined(value: unknown): unknown {
  if (typeof value === 'string') {
    UNSTORABLE.lastIndex = 0;
    return UNSTORABLE.test(value) ? value.replace(UNSTORABLE, '\uFFFD') : value;
  }
  if (Array.isArray(value)) return value.map(withoutUndefined);
  if (value === null || typeof value !== 'object') return value;
  const copy: Record<string, unknown> = {};
  for (const key in value) {
    const member = (value as Record<string, unknown>)[key];
    if (member !== undefined) copy[key] = withoutUndefined(member);
  }
  return copy;
}
