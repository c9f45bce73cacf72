import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { readBundleFile } from '../load/bundle-files';
import { createBareTable } from './bare-table';
import { processCpuMs } from './process-cpu';

/** The resources of some Bundle files, as rows of PostgreSQL's COPY text format. */
export interface CopyRows {
  resources: number;
  /** One chunk per Bundle: `id \t json \n` lines. */
  chunks: Buffer[];
  bytes: number;
}

/**
 * Every entry's resource, serialised as JSON, with a fresh uuid as id (as the server's
 * create gives one). Prepared before the clock starts: the baseline measures PostgreSQL,
 * not gunzip and JSON.parse.
 */
export async function copyRowsOf(files: string[]): Promise<CopyRows> {
  const chunks: Buffer[] = [];
  let resources = 0;
  let bytes = 0;
  for (const file of files) {
    const bundle = JSON.parse(await readBundleFile(file)) as { entry?: { resource?: unknown }[] };
    const lines: string[] = [];
    for (const entry of bundle.entry ?? []) {
      if (entry.resource) {
        // COPY text format: a backslash starts an escape; JSON.stringify leaves no raw tab or newline.
        lines.push(`${randomUUID()}\t${JSON.stringify(entry.resource).replace(/\\/g, '\\\\')}\n`);
      }
    }
    const chunk = Buffer.from(lines.join(''), 'utf8');
    chunks.push(chunk);
    resources += lines.length;
    bytes += chunk.length;
  }
  return { resources, chunks, bytes };
}

/**
 * The physical limit: one `COPY … FROM STDIN` of the rows into a bare
 * `(id text PRIMARY KEY, content jsonb)` table (bare-table.ts: the JSON is parsed into JSONB and the
 * key indexed, nothing else), on one connection, committed. Seconds.
 */
export async function copyIntoBareTable(databaseUrl: string, rows: CopyRows): Promise<{ seconds: number; postgresCpuMs?: number; compression: string }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { compression } = await createBareTable(client, 'raw_ingest');
    const backend = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const cpuBefore = processCpuMs(backend);
    const started = performance.now();
    await pipeline(Readable.from(rows.chunks), client.query(copyFrom('COPY raw_ingest (id, content) FROM STDIN')));
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = processCpuMs(backend);
    const { rows: counted } = await client.query<{ n: string }>('SELECT count(*) AS n FROM raw_ingest');
    if (Number(counted[0].n) !== rows.resources) {
      throw new Error(`raw COPY stored ${counted[0].n} rows of ${rows.resources}`);
    }
    return { seconds, compression, postgresCpuMs: cpuBefore && cpuAfter ? cpuAfter.total - cpuBefore.total : undefined };
  } finally {
    await client.end();
  }
}
