import { closeSync, fdatasyncSync, futimesSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmdirSync, statSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Resource } from '@medplum/fhirtypes';

export type JournalEvent = Resource & { id: string };

/** A closed segment: its file and the events it holds, in the order they were appended. */
export interface JournalSegment {
  file: string;
  events: JournalEvent[];
}

/** Streams of the journals open in this process: a segment of one of them is never an orphan. */
const LIVE_STREAMS = new Set<string>();

const SEPARATOR = '~';

/**
 * A segment untouched for this long is an orphan whatever its name says: its process is on
 * another host or in another container sharing the folder, and has stopped. The journal
 * of a live process touches its files every move (a quarter of a second by default).
 */
export const ORPHAN_AFTER_MS = 30_000;

/**
 * A per-process, append-only file of the AuditEvents of reads (docs/audit.md, "When it is
 * written"): each batch is written with one write(2) before the requests it records are
 * answered. Once write(2) returns the bytes belong to the kernel, so they outlive this
 * process (kill -9, a crash, an OOM kill); with `sync` they are also on disk before the
 * answer (fdatasync), and so outlive a crash of the machine.
 *
 * Files are segments named `host~pid~stream~n.ndjson`. `rotate` closes the current segment
 * and hands over its events (kept in memory, never read back while this process lives);
 * the caller removes the file once they are in PostgreSQL. A segment whose process is
 * gone (same host, no such pid), or that nobody touched for ORPHAN_AFTER_MS, is an
 * orphan: `claimOrphans` renames it to this journal's name (rename is atomic, so one
 * process wins it) and reads it back. A live process whose segment was taken for an
 * orphan loses nothing: it still holds the events in memory, and stores what is not
 * stored yet (JournalMover's retry).
 */
export class AuditJournal {
  private fd: number | undefined;
  private file = '';
  private events: JournalEvent[] = [];
  /** Segments closed by a failed append, handed over by the next rotate. */
  private closed: JournalSegment[] = [];
  private sequence = 0;
  private readonly prefix: string;

  constructor(
    readonly dir: string,
    readonly stream: string,
    private readonly sync: boolean
  ) {
    mkdirSync(dir, { recursive: true });
    this.prefix = [os.hostname(), String(process.pid), stream].join(SEPARATOR);
    LIVE_STREAMS.add(stream);
  }

  /** Appends events, one JSON line each, in a single write; throws if the file cannot take them. */
  append(events: JournalEvent[]): void {
    if (events.length === 0) return;
    if (this.fd === undefined) this.open();
    const text = events.map((e) => JSON.stringify(e)).join('\n') + '\n';
    const bytes = Buffer.from(text, 'utf8');
    try {
      for (let written = 0; written < bytes.length; ) {
        written += writeSync(this.fd as number, bytes, written, bytes.length - written);
      }
      if (this.sync) fdatasyncSync(this.fd as number);
    } catch (err) {
      // A line cut short must not run into the next batch's first line: later appends go to
      // a new segment; this one's events (those appended before) are stored as usual.
      closeSync(this.fd as number);
      this.fd = undefined;
      this.closed.push({ file: this.file, events: this.events });
      this.events = [];
      throw err;
    }
    for (const e of events) this.events.push(e);
  }

  /** Events appended since the last rotation. */
  get pending(): number {
    return this.closed.reduce((n, s) => n + s.events.length, this.events.length);
  }

  /** Closes the current segment and returns it, after any that a failed append closed. */
  rotate(): JournalSegment[] {
    const segments = this.closed;
    this.closed = [];
    if (this.fd !== undefined && this.events.length > 0) {
      closeSync(this.fd);
      segments.push({ file: this.file, events: this.events });
      this.fd = undefined;
      this.events = [];
    }
    return segments;
  }

  /** Removes a segment whose events are stored (gone already if another process claimed it). */
  remove(segment: JournalSegment): void {
    try {
      unlinkSync(segment.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /** Marks this journal's files as alive (see ORPHAN_AFTER_MS); `others` are its rotated segments not yet stored. */
  touch(others: JournalSegment[]): void {
    const now = new Date();
    if (this.fd !== undefined) futimesSync(this.fd, now, now);
    for (const segment of others) {
      try {
        utimesSync(segment.file, now, now);
      } catch {
        // Claimed by another process: see the class comment.
      }
    }
  }

  /** Closes the journal: what is not rotated (an open segment always holds events) stays on disk for the next process. */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    LIVE_STREAMS.delete(this.stream);
    try {
      rmdirSync(this.dir);
    } catch {
      // Not empty: another process's segments, or ours left for the next one.
    }
  }

  /**
   * Takes over the segments of processes of this host that are gone (and of journals of
   * this process that closed with events left), and returns their events. Lines that do
   * not parse (a write cut short by the process's death) are skipped: their requests were
   * never answered.
   */
  claimOrphans(): JournalSegment[] {
    const claimed: JournalSegment[] = [];
    for (const name of readdirSync(this.dir).sort()) {
      if (!name.endsWith('.ndjson') || !isOrphan(this.dir, name)) continue;
      const file = path.join(this.dir, `${this.prefix}${SEPARATOR}${++this.sequence}-claimed.ndjson`);
      try {
        renameSync(path.join(this.dir, name), file);
      } catch {
        continue; // Another process claimed it first.
      }
      claimed.push({ file, events: parseLines(readFileSync(file, 'utf8')) });
    }
    return claimed;
  }

  private open(): void {
    this.file = path.join(this.dir, `${this.prefix}${SEPARATOR}${++this.sequence}.ndjson`);
    this.fd = openSync(this.file, 'a');
  }
}

/**
 * A segment is an orphan when its process (on this host) has ended, or is this one and its
 * journal closed, or when it has not been touched for ORPHAN_AFTER_MS.
 */
function isOrphan(dir: string, name: string): boolean {
  const [host, pid, stream] = name.split(SEPARATOR);
  if (!stream || LIVE_STREAMS.has(stream)) return false;
  if (host === os.hostname() && (Number(pid) === process.pid || !processExists(Number(pid)))) return true;
  // Another host or container, or a pid that may have been reused: only time tells.
  return untouchedFor(path.join(dir, name), ORPHAN_AFTER_MS);
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, under another user.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function untouchedFor(file: string, ms: number): boolean {
  try {
    return Date.now() - statSync(file).mtimeMs > ms;
  } catch {
    return false;
  }
}

function parseLines(text: string): JournalEvent[] {
  const events: JournalEvent[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      events.push(JSON.parse(line) as JournalEvent);
    } catch {
      // A line cut short: see claimOrphans.
    }
  }
  return events;
}

/**
 * The journal's folder for one database: segments are only ever moved into the database
 * they were written for. The embedded PostgreSQL listens on another port at each start,
 * so it is named by its database alone.
 */
export function journalDirFor(baseDir: string, databaseUrl: string, embedded = false): string {
  const url = new URL(databaseUrl);
  const database = decodeURIComponent(url.pathname.slice(1)) || 'postgres';
  const key = (embedded ? `embedded_${database}` : `${url.hostname}_${url.port || '5432'}_${database}`).replace(/[^A-Za-z0-9_.-]/g, '_');
  return path.join(baseDir, key);
}
