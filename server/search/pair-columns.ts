import { paramColumn } from './column-names';
import type { IndexColumn } from './index-columns';
import type { SqlCondition } from './parameter-type';
import type { ReferenceFilter, SearchFilter, TokenFilter } from './search-request';
import { overlap, tokenEntry } from './token-parameter';

/**
 * Pair columns: one GIN-indexed `text[]` of every (patient, token) combination of a
 * resource, for the searches that name both. A patient's Observations number in the
 * thousands (1,544 for one Synthea patient), and `Observation?patient=X&code=…` otherwise
 * reads all of them to test the code (1.3 ms in PostgreSQL at 10× Synthea), or ANDs the
 * patient's bitmap with the code's, which grows with the whole table (16,310 heart-rate
 * entries: 10 ms). With the pair it is one index lookup of the matches alone (57 rows,
 * 0.4 ms). Each pair costs every write of its type a few more GIN entries, so only the
 * commonest patient-scoped search of the largest type has one (docs/architecture.md).
 */
interface PairDefinition {
  /** A reference parameter: only its `Patient/<id>` entries pair. */
  reference: string;
  /**
   * Reference parameters whose `Patient/<id>` entries are exactly the pair's: Observation's
   * `patient` is `subject.where(resolve() is Patient)`, so `subject=Patient/X` (what the
   * Patient compartment and a patient's token filter on) selects the same rows.
   */
  sameAs: readonly string[];
  /** A token parameter: every entry form (`system|code`, `code`, `system|`, `|code`) pairs. */
  token: string;
  column: string;
}

/** Between a `Patient/<id>` entry (which never holds it) and a token entry. */
const SEPARATOR = '\u001f';

const PAIRS: Readonly<Record<string, readonly PairDefinition[]>> = {
  Observation: [{ reference: 'patient', sameAs: ['subject'], token: 'code', column: '__pair_patient_code' }],
};

const NONE: readonly PairDefinition[] = [];

export function pairDefinitions(resourceType: string): readonly PairDefinition[] {
  return PAIRS[resourceType] ?? NONE;
}

export function pairIndexColumns(resourceType: string): IndexColumn[] {
  return pairDefinitions(resourceType).map((pair) => ({ name: pair.column, sqlType: 'text[]', indexMethod: 'gin' }));
}

function pairEntry(reference: string, token: string): string {
  return `${reference}${SEPARATOR}${token}`;
}

/** Adds the pair columns' values to `out`, from its reference and token columns (already extracted). */
export function addPairValues(resourceType: string, out: Record<string, unknown>): void {
  for (const pair of pairDefinitions(resourceType)) {
    const references = out[paramColumn(pair.reference)] as string[] | null | undefined;
    const tokens = out[paramColumn(pair.token)] as string[] | null | undefined;
    let entries: string[] | null = null;
    if (references && tokens) {
      for (const reference of references) {
        if (!reference.startsWith('Patient/')) continue;
        for (const token of tokens) (entries ??= []).push(pairEntry(reference, token));
      }
    }
    out[pair.column] = entries;
  }
}

/**
 * The same values in SQL, from the two columns, for rows written before the pair column
 * existed (storage/sync-index-columns.ts fills them when it adds the column).
 */
export function pairValuesSql(pair: PairDefinition): string {
  const reference = `"${paramColumn(pair.reference)}"`;
  const token = `"${paramColumn(pair.token)}"`;
  return (
    `(SELECT array_agg(r || chr(${SEPARATOR.charCodeAt(0)}) || t) FROM unnest(${reference}) AS r, unnest(${token}) AS t ` +
    `WHERE starts_with(r, 'Patient/'))`
  );
}

/**
 * For a search with `reference` (a filter naming patients) and a plain token filter of
 * the same pair among `filters`: the condition on the pair column (`column` qualifies its
 * name) that finds exactly the rows matching both.
 */
export function pairCondition(
  resourceType: string,
  reference: ReferenceFilter,
  filters: readonly SearchFilter[],
  column: (name: string) => string
): SqlCondition | undefined {
  for (const pair of pairDefinitions(resourceType)) {
    if (reference.code !== pair.reference && !pair.sameAs.includes(reference.code)) continue;
    if (!reference.entries.every((e) => e.startsWith('Patient/'))) continue;
    const token = filters.find((f): f is TokenFilter => f.kind === 'token' && f.code === pair.token && !f.not);
    if (!token) continue;
    const entries: string[] = [];
    for (const r of reference.entries) for (const value of token.values) entries.push(pairEntry(r, tokenEntry(value)));
    return overlap(column(pair.column), entries);
  }
  return undefined;
}
