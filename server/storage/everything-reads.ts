import type { Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { patientRecordTypes } from '../search/patient-record';
import { compartmentContents, compartmentKeys, type RecordRow, type RecordSelection, recordReferences, referencedRows } from './everything-statements';

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
  /** Entries to read; the caller asks one more than a page to learn whether another follows. */
  limit: number;
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

async function readPage(knex: Knex, query: EverythingQuery): Promise<EverythingEntry[]> {
  if (query.patientId !== undefined) {
    return readRecord(knex, query.patientId, query, query.after, query.limit);
  }
  const entries: EverythingEntry[] = [];
  const seen = new Set<string>();
  let after = query.after;
  let fromPatient = after?.patientId;
  for (;;) {
    const batch = knex('Patient').select('id').where('deleted', false).orderBy('id').limit(PATIENT_BATCH);
    if (fromPatient !== undefined) batch.where('id', after ? '>=' : '>', fromPatient);
    const patients: string[] = (await batch).map((r: { id: string }) => r.id);
    for (const patientId of patients) {
      let within = after?.patientId === patientId ? after : undefined;
      for (;;) {
        const wanted = query.limit - entries.length;
        const record = await readRecord(knex, patientId, query, within, wanted);
        for (const entry of record) {
          const key = `${entry.resource.resourceType}/${entry.resource.id}`;
          if (seen.has(key)) continue;
          seen.add(key);
          entries.push({ ...entry, position: { ...entry.position, patientId } });
        }
        if (entries.length >= query.limit) return entries;
        // Fewer than asked: the record is exhausted; otherwise some were duplicates, read on.
        if (record.length < wanted) break;
        within = record[record.length - 1].position;
      }
    }
    if (patients.length < PATIENT_BATCH) return entries;
    fromPatient = patients[patients.length - 1];
    after = undefined;
  }
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
