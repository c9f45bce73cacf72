import type { Resource } from '@medplum/fhirtypes';
import { extractIndexValues } from '../search/extract-index-values';
import { assertValidResource } from '../validation/validate-resource';
import { withSubscriptionRules } from './subscription-rules';
import { type ResourceRow, toVersion, withVersionMeta } from './resource-row';
import type { WriteResult } from './write-resource';
import { writeStatements } from './write-statements';
import { knownProfile } from './stored-profiles';

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

/**
 * Validates and indexes new resources of one type (ids chosen, version 1, `lastUpdated`)
 * into the JSON parameter of a statement that inserts them (write-statements.ts), with
 * what each write returns once the statement has written it. `invalid` makes the error
 * thrown for the resource at a position.
 */
export function newRowsParameter(
  resourceType: string,
  resources: readonly (Resource & { id: string })[],
  lastUpdated: Date,
  invalid: (position: number, err: unknown) => Error = (_, err) => err as Error
): { parameter: Buffer; results: WriteResult[] } {
  const { columns, columnTypes } = writeStatements(resourceType);
  const rows: string[] = [];
  const results: WriteResult[] = [];
  const instant = lastUpdated.toISOString();
  resources.forEach((given, position) => {
    let source = given;
    try {
      // Valid first: the Subscription rules read what they decide on.
      assertValidResource(given, knownProfile);
      source = withSubscriptionRules(given) as typeof given;
    } catch (err) {
      throw invalid(position, err);
    }
    const content = withVersionMeta(source, 1, instant);
    rows.push(rowJson(source.id, content, extractIndexValues(source), columns, columnTypes));
    const row: ResourceRow = { id: source.id, version_id: 1, last_updated: lastUpdated, deleted: false, content, method: 'POST' };
    results.push({ version: toVersion(resourceType, row), created: true, noop: false });
  });
  return { parameter: binaryJsonb(rows), results };
}
