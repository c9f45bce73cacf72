import type { Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { genericPlans } from './generic-plans';
import { patientRecordTypes } from '../search/patient-record';
import { compartmentContents, compartmentCount, compartmentKeys, type RecordRow, type RecordSelection, recordReferences, referencedRows } from './everything-statements';

/**
 * The reads of `Patient/$everything` (only Repository calls these). A record is read in a
 * fixed order: the patient's compartment (Patient first, then its types alphabetically,
 * each by id), then the resources it refers to outside the compartment (by type, by id).
 * A position in that order (type, id) is the keyset cursor, as for search
 * (search/page-cursor.ts): pages neither repeat nor skip when resources are written
 * between them. Each page costs one statement for the compartment keys over every type,
 * one for the contents, and, once the compartment is exhausted, one for the references
 * and one for the referenced resources.
 */

/** Where a page starts: after this entry (and, at type level, in this patient's record). */
export interface EverythingPosition {
  /** Type level only: the patient whose record the entry belongs to. */
  patientId?: string;
  resourceType: string;
  id: string;
}

/**
 * `types` (`_type`): only these are returned, but references are followed from the whole
 * record; `since` (`_since`): updated at or after; `careDates` (`start` / `end`): see
 * patientRecordFilters.
 */
export interface EverythingQuery extends RecordSelection {
  /** One patient's record, or (type level) every patient's, one after the other in id order. */
  patientId?: string;
  after?: EverythingPosition;
  /**
   * Instead of `after`: the entries just before this position (a `previous` page), still
   * returned in the record's order, the last `limit` of them.
   */
  before?: EverythingPosition;
  /** Entries to read; the caller asks one more than a page to learn whether another follows. */
  limit: number;
  /** Type level: only these patients' records (those a caller may see, when they are few), still in id order. */
  patientIds?: readonly string[];
}

export interface EverythingEntry {
  resource: Resource;
  /** 'match' for the compartment, 'include' for the resources it refers to. */
  mode: 'match' | 'include';
  position: EverythingPosition;
}

/** Patients read per statement when walking every patient (type level). */
const PATIENT_BATCH = 50;

/**
 * Up to `limit` entries after `query.after`. At type level a resource shared by two
 * records (a Practitioner, a linked Patient) appears in each, but once per call.
 */
export async function readEverything(knex: Knex, query: EverythingQuery): Promise<EverythingEntry[]> {
  // Inside a caller's transaction (a batch entry), its snapshot and settings stand.
  if ((knex as Knex.Transaction).isTransaction) return readPage(knex, query);
  // One snapshot for the page's statements (keys, contents, references agree), and no
  // parallel plans: these are index reads of many wide rows, and shipping them from
  // workers through the tuple queues cost several times the reads themselves; generic
  // plans for the prepared statements (see everything-statements.ts).
  return knex.transaction(
    async (tx) => {
      await tx.raw('SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL plan_cache_mode = force_generic_plan');
      return readPage(tx, query);
    },
    { isolationLevel: 'repeatable read', readOnly: true }
  );
}

/**
 * `Bundle.total` of one patient's `$everything`: the resources of its compartment that
 * the selection returns (the `match` entries), not the referenced ones.
 */
export async function countEverything(knex: Knex, query: EverythingQuery & { patientId: string }): Promise<number> {
  // One statement, no transaction of its own: the generic-plan pool gives it the generic plan the page's statements get from SET LOCAL.
  return compartmentCount(genericPlans(knex) as Knex, query.patientId, query);
}

/**
 * A page after `query.after`, or (a previous page) before `query.before`: read backwards,
 * nearest first, then turned round. At type level the patients are walked in id order
 * (backwards from the cursor's patient for a previous page), each record in turn; a
 * resource shared by two records appears once per call.
 */
async function readPage(knex: Knex, query: EverythingQuery): Promise<EverythingEntry[]> {
  const back = query.before !== undefined;
  const read = back ? readRecordBackward : readRecord;
  const from = query.before ?? query.after;
  const inOrder = (entries: EverythingEntry[]): EverythingEntry[] => (back ? entries.reverse() : entries);
  if (query.patientId !== undefined) return inOrder(await read(knex, query.patientId, query, from, query.limit));
  const entries: EverythingEntry[] = [];
  const seen = new Set<string>();
  let cursor = from;
  let fromPatient = from?.patientId;
  for (;;) {
    const batch = knex('Patient').select('id').where('deleted', false).orderBy('id', back ? 'desc' : 'asc').limit(PATIENT_BATCH);
    if (query.patientIds) batch.whereIn('id', [...query.patientIds]);
    // The cursor's own patient first (its record from the cursor on), then the ones beyond it.
    if (fromPatient !== undefined) batch.where('id', `${back ? '<' : '>'}${cursor ? '=' : ''}`, fromPatient);
    const patients: string[] = (await batch).map((r: { id: string }) => r.id);
    for (const patientId of patients) {
      let within = cursor?.patientId === patientId ? cursor : undefined;
      for (;;) {
        const wanted = query.limit - entries.length;
        const record = await read(knex, patientId, query, within, wanted);
        for (const entry of record) {
          const key = `${entry.resource.resourceType}/${entry.resource.id}`;
          if (seen.has(key)) continue;
          seen.add(key);
          entries.push({ ...entry, position: { ...entry.position, patientId } });
        }
        if (entries.length >= query.limit) return inOrder(entries);
        // Fewer than asked: the record is exhausted; otherwise some were duplicates, read on.
        if (record.length < wanted) break;
        within = record[record.length - 1].position;
      }
    }
    if (patients.length < PATIENT_BATCH) return inOrder(entries);
    fromPatient = patients[patients.length - 1];
    cursor = undefined;
  }
}

/** One patient's record before `before` (from its end without it), nearest first: the referenced resources, then the compartment. */
async function readRecordBackward(db: Knex, patientId: string, query: EverythingQuery, before: EverythingPosition | undefined, limit: number): Promise<EverythingEntry[]> {
  const inCompartment = before !== undefined && patientRecordTypes().includes(before.resourceType);
  const entries: EverythingEntry[] = [];
  if (!inCompartment) {
    const references = await recordReferences(db, patientId, query);
    if ([...references.values()].some((ids) => ids.size > 0)) {
      for (const row of await referencedRows(db, references, query.since, before, limit, 'backward')) entries.push(entry(row, 'include'));
    }
    if (entries.length >= limit) return entries;
  }
  const keys = await compartmentKeys(db, patientId, query, inCompartment ? before : undefined, limit - entries.length, 'backward');
  for (const row of await compartmentContents(db, keys)) entries.push(entry(row, 'match'));
  return entries;
}

/** One patient's record from `after`: the compartment first, then what it refers to. */
async function readRecord(db: Knex, patientId: string, query: EverythingQuery, after: EverythingPosition | undefined, limit: number): Promise<EverythingEntry[]> {
  const inCompartment = after === undefined || patientRecordTypes().includes(after.resourceType);
  const entries: EverythingEntry[] = [];
  if (inCompartment) {
    const keys = await compartmentKeys(db, patientId, query, after, limit);
    for (const row of await compartmentContents(db, keys)) entries.push(entry(row, 'match'));
    if (keys.length >= limit) return entries;
  }
  const references = await recordReferences(db, patientId, query);
  if ([...references.values()].every((ids) => ids.size === 0)) return entries;
  const rows = await referencedRows(db, references, query.since, inCompartment ? undefined : after, limit - entries.length);
  for (const row of rows) entries.push(entry(row, 'include'));
  return entries;
}

function entry(row: RecordRow, mode: EverythingEntry['mode']): EverythingEntry {
  return { resource: row.resource, mode, position: { resourceType: row.resourceType, id: row.id } };
}
