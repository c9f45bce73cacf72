import type { Resource } from '@medplum/fhirtypes';
import { conflict } from '../core/outcome';
import { extractIndexValues } from '../search/extract-index-values';
import { assertValidResource } from '../validation/validate-resource';
import { type ResourceRow, toVersion, withVersionMeta } from './resource-row';
import { type Db, runSql } from './sql';
import { type WriteResult, writeResource } from './write-resource';
import { writeStatements } from './write-statements';

/**
 * The rows as one jsonb parameter in PostgreSQL's binary format (a version byte, 1, then
 * the JSON text): pg sends a Buffer as it is, where a string would be measured and
 * encoded once more inside the driver — for ~1 MB per chunk. Each row is encoded into
 * the buffer on its own: joining them into one string first was 5× slower (the join
 * flattens every row's rope of concatenations into a new string, which is then encoded).
 */
function binaryJsonb(rows: string[]): Buffer {
  let length = 3 + Math.max(0, rows.length - 1); // version byte, '[' and ']', and a ',' between rows
  const lengths = new Array<number>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    lengths[i] = Buffer.byteLength(rows[i], 'utf8');
    length += lengths[i];
  }
  const buffer = Buffer.allocUnsafe(length);
  let at = 0;
  buffer[at++] = 1;
  buffer[at++] = 0x5b; // [
  for (let i = 0; i < rows.length; i++) {
    if (i > 0) buffer[at++] = 0x2c; // ,
    at += buffer.write(rows[i], at, lengths[i], 'utf8');
  }
  buffer[at++] = 0x5d; // ]
  return buffer;
}

/** One row of the insertMany statement's JSON: jsonb columns already hold JSON text. */
function rowJson(id: string, content: Resource, index: Record<string, unknown>, columns: readonly string[], types: readonly string[]): string {
  let json = `{"id":${JSON.stringify(id)},"content":${JSON.stringify(content)}`;
  for (let c = 0; c < columns.length; c++) {
    const value = index[columns[c]];
    if (value === null || value === undefined) continue;
    json += `,${JSON.stringify(columns[c])}:${types[c] === 'jsonb' ? (value as string) : JSON.stringify(value)}`;
  }
  return `${json}}`;
}

/** The resource at `position` could not be written (invalid, or its id taken): `cause` says why. */
export class NewResourceError extends Error {
  constructor(
    readonly position: number,
    override readonly cause: unknown
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/** Rows per statement: large enough to amortise the round trip, small enough to overlap. */
const CHUNK = 250;

/**
 * Creates many new resources whose ids the caller chose (a transaction's POST entries):
 * the same validation, indexing, versioning and history as writeResource, but one
 * multi-row INSERT per type and chunk instead of a round trip per resource — a Synthea
 * patient is a few thousand of them. An id that is taken fails the whole call (409).
 * SearchParameters change the schema as they are written and go one by one.
 *
 * `db` must be a transaction: each chunk is sent as soon as it is built and the next one
 * is built while PostgreSQL inserts it, so this process's CPU and the database's overlap.
 */
export async function writeNewResources(db: Db, resources: readonly (Resource & { id: string })[]): Promise<WriteResult[]> {
  const results: WriteResult[] = new Array(resources.length);
  const byType = new Map<string, number[]>();
  for (let i = 0; i < resources.length; i++) {
    const positions = byType.get(resources[i].resourceType) ?? [];
    positions.push(i);
    byType.set(resources[i].resourceType, positions);
  }
  const lastUpdated = new Date();
  // One statement in flight: the next chunk is built while PostgreSQL runs it.
  let inFlight: Promise<void> | undefined;
  try {
    for (const [resourceType, positions] of byType) {
      if (resourceType === 'SearchParameter') {
        await inFlight;
        inFlight = undefined;
        for (const i of positions) {
          const resource = resources[i];
          results[i] = await writeResource(db, { method: 'POST', resourceType, id: resource.id, resource }).catch((err: unknown) => {
            throw new NewResourceError(i, err);
          });
        }
        continue;
      }
      const { columns, columnTypes, key, insertMany: statement } = writeStatements(resourceType);
      for (let start = 0; start < positions.length; start += CHUNK) {
        const part = positions.slice(start, start + CHUNK);
        const rows: string[] = [];
        for (const i of part) {
          const source = resources[i];
          try {
            assertValidResource(source);
          } catch (err) {
            throw new NewResourceError(i, err);
          }
          const content = withVersionMeta(source, 1, lastUpdated);
          rows.push(rowJson(source.id, content, extractIndexValues(source), columns, columnTypes));
          const row: ResourceRow = { id: source.id, version_id: 1, last_updated: lastUpdated, deleted: false, content, method: 'POST' };
          results[i] = { version: toVersion(resourceType, row), created: true, noop: false };
        }
        await inFlight;
        inFlight = runSql(db, `insert-many:${key}`, statement, [lastUpdated, binaryJsonb(rows)]).then((result) => {
          if (result.rowCount !== part.length) {
            throw new NewResourceError(part[0], conflict(`${part.length - (result.rowCount ?? 0)} of the new ${resourceType} ids are already taken`));
          }
        });
        // Awaited before the next statement or below; this only keeps it from counting as unhandled meanwhile.
        inFlight.catch(() => undefined);
      }
    }
    await inFlight;
  } catch (err) {
    // Never return while a statement still runs on the caller's transaction.
    await inFlight?.catch(() => undefined);
    throw err;
  }
  return results;
}
