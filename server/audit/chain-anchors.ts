import { mkdir, open, readdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Knex } from 'knex';

/** Where a stream's chain had got to when its sealer last committed. */
export interface ChainAnchor {
  stream: string;
  seq: number;
  hash: string;
  auditEventId: string;
  /** When it was written (ISO 8601). */
  sealedAt: string;
}

const SUFFIX = '.anchor.json';

/**
 * The heads of this database's hash chains, kept outside the database
 * (docs/audit.md, "Anchors"). The chain alone cannot show that its newest rows were
 * removed together with their AuditEvents, nor that someone who changed an event
 * recomputed every later hash (SHA-256 has no key): both leave a chain that is
 * consistent in itself. After each commit the sealer overwrites its stream's anchor file
 * with the head it committed, so `audit verify` can demand that every anchored
 * (stream, seq) still exists with that hash. Whoever can change the database but not
 * this folder cannot hide either.
 *
 * The folder is per database instance: PostgreSQL's system identifier (new at each
 * initdb) and the database's oid (new when it is created again), so a database created
 * afresh under the same name, or the embedded one after its data folder was removed,
 * never meets the anchors of the one before.
 */
export class ChainAnchors {
  private constructor(
    readonly dir: string,
    private readonly sync: boolean
  ) {}

  /** The anchors of the database `knex` reaches, under `baseDir` (AUDIT_ANCHOR_DIR). */
  static async open(knex: Knex, baseDir: string, sync = false): Promise<ChainAnchors> {
    const dir = path.join(baseDir, await databaseInstance(knex));
    await mkdir(dir, { recursive: true });
    return new ChainAnchors(dir, sync);
  }

  /**
   * Replaces the stream's anchor: written to a file of its own, then renamed over the old
   * one, so a reader (or a crash) sees the previous anchor or this one, never half of one.
   */
  async record(anchor: ChainAnchor): Promise<void> {
    const file = path.join(this.dir, `${anchor.stream}${SUFFIX}`);
    const partial = `${file}.${process.pid}.tmp`;
    const handle = await open(partial, 'w');
    try {
      await handle.writeFile(`${JSON.stringify(anchor)}\n`);
      if (this.sync) await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(partial, file);
  }
}

/** This database instance's name among anchor folders: `<system identifier>_<database oid>`. */
export async function databaseInstance(knex: Knex): Promise<string> {
  const { rows } = await knex.raw(
    `SELECT (SELECT system_identifier FROM pg_control_system())::text AS system, (SELECT oid FROM pg_database WHERE datname = current_database())::text AS oid`
  );
  return `${rows[0].system}_${rows[0].oid}`;
}

/** The anchors in `dir` (one database instance's folder); none if it does not exist. Unreadable files are reported, not skipped silently. */
export async function readAnchors(dir: string): Promise<{ anchors: ChainAnchor[]; unreadable: string[] }> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { anchors: [], unreadable: [] };
    throw err;
  }
  const anchors: ChainAnchor[] = [];
  const unreadable: string[] = [];
  for (const name of names.filter((n) => n.endsWith(SUFFIX)).sort()) {
    try {
      const anchor = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as ChainAnchor;
      if (typeof anchor.stream !== 'string' || !Number.isInteger(anchor.seq) || typeof anchor.hash !== 'string') throw new Error('not an anchor');
      anchors.push(anchor);
    } catch {
      unreadable.push(name);
    }
  }
  return { anchors, unreadable };
}
