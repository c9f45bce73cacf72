import { badRequest } from '../core/outcome';
import type { SqlCondition } from './parameter-type';

/**
 * Keyset paging: a `next` / `previous` link carries the sort key values of the last (or
 * first) entry of the page it came from, and the next page is "the rows after those
 * values" in the search's order. Unlike an offset, this neither repeats nor skips rows
 * when others create or delete resources between two pages; since the order always ends
 * in `id` (and ids never change), a resource whose sort keys do not change is seen
 * exactly once. https://hl7.org/fhir/R4/http.html#paging leaves the link format to the
 * server; the cursor is opaque to clients.
 */
export interface PageCursor {
  /** `next`: rows after `values`; `previous`: rows before them (read backwards). */
  direction: 'next' | 'previous';
  /** The sort key values (as text, PostgreSQL infers their types), then the id. */
  values: (string | null)[];
}

/** One ORDER BY key as SQL: the expression, its direction and where NULLs go. */
export interface SortKey {
  expression: string;
  descending: boolean;
  nullsFirst: boolean;
  /** True for columns declared NOT NULL (id, last_updated): simpler, index-friendly SQL. */
  notNull?: boolean;
}

const ORDER_TERM = /^([\s\S]+?)\s+(ASC|DESC)(?:\s+NULLS\s+(FIRST|LAST))?$/i;

/** Splits an ORDER BY term (`"col" DESC NULLS LAST`) as the parameter types write them. */
export function sortKeyOf(term: string): SortKey {
  const m = ORDER_TERM.exec(term.trim());
  if (!m) throw new Error(`Sort term without a direction: ${term}`);
  const descending = m[2].toUpperCase() === 'DESC';
  // PostgreSQL's defaults: NULLs sort as if larger than every value.
  const nullsFirst = m[3] ? m[3].toUpperCase() === 'FIRST' : descending;
  return { expression: m[1], descending, nullsFirst };
}

export function orderByTerm(key: SortKey, reverse = false): string {
  const descending = key.descending !== reverse;
  const nullsFirst = key.nullsFirst !== reverse;
  return `${key.expression} ${descending ? 'DESC' : 'ASC'}${key.notNull ? '' : ` NULLS ${nullsFirst ? 'FIRST' : 'LAST'}`}`;
}

export function encodeCursor(cursor: PageCursor): string {
  return Buffer.from(JSON.stringify([cursor.direction === 'next' ? 'n' : 'p', ...cursor.values])).toString('base64url');
}

export function decodeCursor(text: string, keyCount: number): PageCursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (
    !Array.isArray(parsed) ||
    (parsed[0] !== 'n' && parsed[0] !== 'p') ||
    parsed.length !== keyCount + 1 ||
    !parsed.slice(1).every((v) => v === null || typeof v === 'string') ||
    typeof parsed[parsed.length - 1] !== 'string'
  ) {
    throw badRequest('Invalid _cursor: use the next and previous links as the server gave them, with the same _sort', '_cursor');
  }
  return { direction: parsed[0] === 'n' ? 'next' : 'previous', values: parsed.slice(1) as (string | null)[] };
}

/**
 * The rows strictly after (`next`) or before (`previous`) the cursor's values in the
 * order of `keys`: (k1 past v1) OR (k1 = v1 AND k2 past v2) OR …, NULLs placed as the
 * ORDER BY places them. When every key is NOT NULL and in one direction this is a row
 * comparison, which PostgreSQL can start an index scan from.
 */
export function cursorCondition(keys: readonly SortKey[], cursor: PageCursor): SqlCondition {
  const forward = cursor.direction === 'next';
  if (keys.every((k) => k.notNull && k.descending === keys[0].descending)) {
    const greater = keys[0].descending !== forward;
    return {
      sql: `(${keys.map((k) => k.expression).join(', ')}) ${greater ? '>' : '<'} (${keys.map(() => '?').join(', ')})`,
      bindings: [...cursor.values],
    };
  }
  const alternatives: SqlCondition[] = [];
  const equalSoFar: SqlCondition[] = [];
  keys.forEach((key, i) => {
    const past = pastCondition(key, cursor.values[i], forward);
    if (past) alternatives.push(and([...equalSoFar, past]));
    equalSoFar.push(equalCondition(key, cursor.values[i]));
  });
  if (alternatives.length === 0) return { sql: 'false', bindings: [] };
  return {
    sql: `(${alternatives.map((a) => a.sql).join(' OR ')})`,
    bindings: alternatives.flatMap((a) => a.bindings),
  };
}

function and(conditions: SqlCondition[]): SqlCondition {
  return { sql: `(${conditions.map((c) => c.sql).join(' AND ')})`, bindings: conditions.flatMap((c) => c.bindings) };
}

function equalCondition(key: SortKey, value: string | null): SqlCondition {
  return value === null ? { sql: `${key.expression} IS NULL`, bindings: [] } : { sql: `${key.expression} = ?`, bindings: [value] };
}

/** Rows whose key comes strictly after (forward) or before `value` in this key's order. */
function pastCondition(key: SortKey, value: string | null, forward: boolean): SqlCondition | undefined {
  // Walking backwards is walking forwards in the reversed order.
  const descending = key.descending !== !forward;
  const nullsFirst = key.nullsFirst !== !forward;
  if (value === null) {
    // Past a NULL: the non-NULL values if NULLs come first, nothing if they come last.
    return nullsFirst ? { sql: `${key.expression} IS NOT NULL`, bindings: [] } : undefined;
  }
  const comparison = `${key.expression} ${descending ? '<' : '>'} ?`;
  return nullsFirst || key.notNull
    ? { sql: comparison, bindings: [value] }
    : { sql: `(${comparison} OR ${key.expression} IS NULL)`, bindings: [value] };
}
