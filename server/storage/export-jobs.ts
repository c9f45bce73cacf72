import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { Principal } from '../access/principal';

export type ExportLevel = 'system' | 'patient' | 'group';
/** The `includeAssociatedData` values of Bulk Data 2.0 (CodeSystem include-associated-data). */
export type AssociatedData = 'LatestProvenanceResources' | 'RelevantProvenanceResources';

export type ExportStatus = 'accepted' | 'in-progress' | 'completed' | 'error' | 'cancelled';

/** Where a job has got to: the type being read and the last id written (system level), or the $everything position (patient, group). */
export interface ExportCursor {
  typeIndex?: number;
  afterId?: string;
  memberIndex?: number;
  after?: unknown;
  files?: number;
}

export interface ExportJob {
  id: string;
  status: ExportStatus;
  level: ExportLevel;
  groupId?: string;
  /** `_type`; undefined for every type the caller may read. */
  types?: string[];
  /** `_typeFilter`: per type, search queries (`status=active`) of which its resources must match one. */
  typeFilters?: Record<string, string[]>;
  /** `_elements`: `Type.element` or `element` (every type); undefined for whole resources. */
  elements?: string[];
  /** `patient`: the ids of the patients a Patient or Group export is confined to. */
  patients?: string[];
  /** What the manifest's error file reports, one OperationOutcome each: parameters ignored (lenient), patients left out. */
  issues: OperationOutcomeIssue[];
  /** `includeAssociatedData`: which Provenance of the exported resources is exported with them. */
  associated?: AssociatedData[];
  since?: Date;
  transactionTime: Date;
  request: string;
  principal?: Principal;
  cursor: ExportCursor;
  exported: number;
  error?: string;
  /** When the job last moved: for a finished one, when it finished. */
  updatedAt: Date;
}

interface JobRow {
  id: string;
  status: ExportStatus;
  level: ExportLevel;
  group_id: string | null;
  types: string[] | null;
  type_filter: Record<string, string[]> | null;
  elements: string[] | null;
  patients: string[] | null;
  issues: OperationOutcomeIssue[] | null;
  associated: AssociatedData[] | null;
  since: Date | null;
  transaction_time: Date;
  request: string;
  principal: Principal | null;
  cursor: ExportCursor;
  exported: string;
  error: string | null;
  updated_at: Date;
}

function fromRow(row: JobRow): ExportJob {
  return {
    id: row.id,
    status: row.status,
    level: row.level,
    groupId: row.group_id ?? undefined,
    types: row.types ?? undefined,
    typeFilters: row.type_filter ?? undefined,
    elements: row.elements ?? undefined,
    patients: row.patients ?? undefined,
    issues: row.issues ?? [],
    associated: row.associated ?? undefined,
    since: row.since ?? undefined,
    transactionTime: row.transaction_time,
    request: row.request,
    principal: row.principal ?? undefined,
    cursor: row.cursor,
    exported: Number(row.exported),
    error: row.error ?? undefined,
    updatedAt: row.updated_at,
  };
}

export type NewExportJob = Pick<ExportJob, 'level' | 'groupId' | 'types' | 'typeFilters' | 'elements' | 'patients' | 'issues' | 'associated' | 'since' | 'request' | 'principal'>;

export async function createExportJob(
  knex: Knex,
  job: NewExportJob
): Promise<ExportJob> {
  const rows: JobRow[] = (
    await knex.raw(
      `INSERT INTO export_job (id, status, level, group_id, types, type_filter, elements, patients, issues, associated, since, transaction_time, request, principal)
       VALUES (?, 'accepted', ?, ?, ?, ?, ?, ?, ?, ?, ?, clock_timestamp(), ?, ?) RETURNING *`,
      [
        randomUUID(),
        job.level,
        job.groupId ?? null,
        job.types ?? null,
        job.typeFilters ? JSON.stringify(job.typeFilters) : null,
        job.elements ?? null,
        job.patients ?? null,
        JSON.stringify(job.issues),
        job.associated ?? null,
        job.since ?? null,
        job.request,
        job.principal ? JSON.stringify(job.principal) : null,
      ]
    )
  ).rows;
  return fromRow(rows[0]);
}

export async function readExportJob(knex: Knex | Knex.Transaction, id: string): Promise<ExportJob | undefined> {
  if (!/^[0-9a-f-]{36}$/.test(id)) return undefined;
  const rows: JobRow[] = (await knex.raw('SELECT * FROM export_job WHERE id = ?', [id])).rows;
  return rows[0] ? fromRow(rows[0]) : undefined;
}

/** Locks the oldest open job no other process holds, for one step in `tx`. */
export async function claimExportJob(tx: Knex.Transaction): Promise<ExportJob | undefined> {
  const rows: JobRow[] = (
    await tx.raw(`SELECT * FROM export_job WHERE status IN ('accepted', 'in-progress') ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED`)
  ).rows;
  return rows[0] ? fromRow(rows[0]) : undefined;
}

export async function saveExportJob(tx: Knex.Transaction, job: ExportJob): Promise<void> {
  await tx.raw(`UPDATE export_job SET status = ?, cursor = ?, exported = ?, error = ?, issues = ?, updated_at = now() WHERE id = ?`, [
    job.status,
    JSON.stringify(job.cursor),
    job.exported,
    job.error ?? null,
    JSON.stringify(job.issues),
    job.id,
  ]);
}

/** Cancels a job that is not finished yet, or forgets one that is (DELETE on its status URL): its files go. */
/** Whether a finished export is past its retention (it is then gone for clients, and deleted by the next job round). */
export function exportExpired(job: ExportJob, retentionSeconds: number, now = Date.now()): boolean {
  return (job.status === 'completed' || job.status === 'error') && job.updatedAt.getTime() + retentionSeconds * 1000 <= now;
}

/** Deletes finished (and cancelled) exports older than the retention, their files and bookkeeping with them (ON DELETE CASCADE). */
export async function deleteExpiredExports(knex: Knex, retentionSeconds: number): Promise<number> {
  const { rowCount } = await knex.raw(`DELETE FROM export_job WHERE status IN ('completed', 'error', 'cancelled') AND updated_at <= now() - make_interval(secs => ?)`, [retentionSeconds]);
  return rowCount ?? 0;
}

export async function cancelExportJob(knex: Knex, id: string): Promise<void> {
  await knex.raw(`UPDATE export_job SET status = 'cancelled', updated_at = now() WHERE id = ?`, [id]);
  await knex.raw('DELETE FROM export_file WHERE job_id = ?', [id]);
  await knex.raw('DELETE FROM export_provenance WHERE job_id = ?', [id]);
}

/** Of these Provenance ids, those the job has not written yet, now marked written (in the step's transaction). */
export async function unwrittenProvenance(tx: Knex.Transaction, jobId: string, ids: readonly string[]): Promise<Set<string>> {
  return markWritten(tx, 'export_provenance', 'provenance_id', jobId, ids);
}

/** Of `resources` (`Type/id`), those not yet written by the job, now recorded as written. */
export async function unwrittenResources(tx: Knex.Transaction, jobId: string, resources: readonly string[]): Promise<Set<string>> {
  return markWritten(tx, 'export_written', 'resource', jobId, resources);
}

/** Records `values` in a job's table of what it wrote; those that were not there yet. */
async function markWritten(tx: Knex.Transaction, table: 'export_provenance' | 'export_written', column: string, jobId: string, values: readonly string[]): Promise<Set<string>> {
  if (values.length === 0) return new Set();
  const rows: Record<string, string>[] = (
    await tx.raw(`INSERT INTO ${table} (job_id, ${column}) SELECT ?, unnest(?::text[]) ON CONFLICT DO NOTHING RETURNING ${column} AS value`, [jobId, [...values]])
  ).rows;
  return new Set(rows.map((r) => r.value));
}

export async function addExportFile(tx: Knex.Transaction, jobId: string, seq: number, resourceType: string, lines: string[]): Promise<void> {
  await tx.raw('INSERT INTO export_file (job_id, seq, resource_type, count, ndjson) VALUES (?, ?, ?, ?, ?)', [jobId, seq, resourceType, lines.length, `${lines.join('\n')}\n`]);
}

export async function listExportFiles(knex: Knex, jobId: string): Promise<{ seq: number; resourceType: string; count: number }[]> {
  const rows: { seq: number; resource_type: string; count: number }[] = (
    await knex.raw('SELECT seq, resource_type, count FROM export_file WHERE job_id = ? ORDER BY seq', [jobId])
  ).rows;
  return rows.map((r) => ({ seq: r.seq, resourceType: r.resource_type, count: r.count }));
}

export async function readExportFile(knex: Knex, jobId: string, seq: number): Promise<string | undefined> {
  const rows: { ndjson: string }[] = (await knex.raw('SELECT ndjson FROM export_file WHERE job_id = ? AND seq = ?', [jobId, seq])).rows;
  return rows[0]?.ndjson;
}

/** What the HTTP handlers use: jobs and their files, on the server's pool. */
export class ExportJobStore {
  constructor(private readonly knex: Knex) {}

  create(job: NewExportJob): Promise<ExportJob> {
    return createExportJob(this.knex, job);
  }

  read(id: string): Promise<ExportJob | undefined> {
    return readExportJob(this.knex, id);
  }

  cancel(id: string): Promise<void> {
    return cancelExportJob(this.knex, id);
  }

  files(jobId: string): Promise<{ seq: number; resourceType: string; count: number }[]> {
    return listExportFiles(this.knex, jobId);
  }

  file(jobId: string, seq: number): Promise<string | undefined> {
    return readExportFile(this.knex, jobId, seq);
  }
}
