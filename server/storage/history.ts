import type { Knex } from 'knex';
import { badRequest } from '../core/outcome';
import type { DateRange } from '../core/date-range';
import { withCurrentContent } from './history-content';
import { type ResourceRow, type ResourceVersion, toVersion } from './resource-row';

export interface HistoryQuery {
  resourceType?: string;
  id?: string;
  /** _since: versions created at or after this instant. */
  since?: Date;
  /** _at: versions that were current at some point during this range. */
  at?: DateRange;
  count: number;
  /** Opaque position from a previous page's nextCursor. */
  cursor?: string;
}

export interface HistoryPage {
  versions: ResourceVersion[];
  nextCursor?: string;
}

type CursorKey = [string, string, string, number];

const COLUMNS = ['resource_type', 'id', 'version_id', 'last_updated', 'deleted', 'method', 'content'];

/**
 * Newest first, paged by keyset on (last_updated, type, id, version): a client paging
 * to the end neither skips nor repeats a version while others keep writing.
 */
export async function readHistory(knex: Knex, query: HistoryQuery): Promise<HistoryPage> {
  const scoped = (qb: Knex.QueryBuilder): Knex.QueryBuilder => {
    if (query.resourceType) {
      qb.where('resource_type', query.resourceType);
    }
    if (query.id) {
      qb.where('id', query.id);
    }
    if (query.since) {
      qb.where('last_updated', '>=', query.since);
    }
    return qb;
  };

  let source: Knex.QueryBuilder;
  if (query.at) {
    const at = query.at;
    const inner = scoped(knex('resource_history').select(COLUMNS))
      .select(knex.raw('lead(last_updated) OVER (PARTITION BY resource_type, id ORDER BY version_id) AS superseded_at'))
      .where('last_updated', '<', at.end);
    source = knex
      .from(inner.as('h'))
      .select(COLUMNS)
      .where((w) => w.whereNull('superseded_at').orWhere('superseded_at', '>', at.start));
  } else {
    source = scoped(knex('resource_history').select(COLUMNS));
  }
  if (query.cursor) {
    const [lastUpdated, type, id, version] = decodeCursor(query.cursor);
    source.whereRaw('(last_updated, resource_type, id, version_id) < (?::timestamptz, ?, ?, ?)', [
      lastUpdated,
      type,
      id,
      version,
    ]);
  }
  const rows: ResourceRow[] = await source
    .orderBy([
      { column: 'last_updated', order: 'desc' },
      { column: 'resource_type', order: 'desc' },
      { column: 'id', order: 'desc' },
      { column: 'version_id', order: 'desc' },
    ])
    .limit(query.count + 1);

  const page = await withCurrentContent(knex, rows.slice(0, query.count));
  const last = page[page.length - 1];
  return {
    versions: page.map((row) => toVersion(row.resource_type as string, row)),
    nextCursor:
      rows.length > query.count && last
        ? encodeCursor([last.last_updated.toISOString(), last.resource_type as string, last.id, last.version_id])
        : undefined,
  };
}

function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

function decodeCursor(cursor: string): CursorKey {
  try {
    const key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(key) &&
      key.length === 4 &&
      typeof key[0] === 'string' &&
      !Number.isNaN(Date.parse(key[0])) &&
      typeof key[1] === 'string' &&
      typeof key[2] === 'string' &&
      Number.isInteger(key[3])
    ) {
      return key as CursorKey;
    }
  } catch {
    // fall through to the 400 below
  }
  throw badRequest(`Invalid history page cursor "${cursor}"`);
}
