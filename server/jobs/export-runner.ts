import type { Group, Provenance, Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { GuardedStore } from '../access/guarded-store';
import { accessFor, type AccessOptions } from '../access/principal-access';
import { isOperationOutcomeError, issue } from '../core/outcome';
import { referenceIdAnywhere } from '../core/references';
import { parseSearchRequest } from '../search/parse-search-request';
import type { PageCursor } from '../search/page-cursor';
import type { EverythingPosition } from '../storage/everything-reads';
import type { Repository } from '../storage/repository';
import type { ResourceStore } from '../storage/resource-store';
import { resourceTypes } from '../validation/structure-definitions';
import { applySummary } from '../fhir/summary';
import { keepMatching, typeFilterCondition } from '../operations/export-type-filter';
import { addExportFile, claimExportJob, type ExportJob, saveExportJob, unwrittenProvenance, unwrittenResources } from '../storage/export-jobs';
import { compartmentPatients } from '../search/compartment-patients';
import { stringifyWithStoredText } from '../storage/lazy-resource';

export interface ExportRunnerOptions {
  /** Resources read per step (and at most per file). */
  pageSize: number;
  /** Finished exports older than this are deleted (config.exportRetentionSeconds). */
  retentionSeconds?: number;
  accessOptions?: AccessOptions;
}

/**
 * One step of the oldest open export that no other process holds (docs/bulk-export.md):
 * one page of resources read through the one read path, as the job's principal may see
 * them, written as NDJSON files, and the cursor moved, in one transaction with the job
 * row locked. A crash loses the step in progress; any process continues from the
 * committed cursor. Returns false when no job was open.
 */
export async function runExportStep(knex: Knex, repo: Repository, logger: Logger, options: ExportRunnerOptions): Promise<boolean> {
  return knex.transaction(async (tx) => {
    const job = await claimExportJob(tx);
    if (!job) return false;
    try {
      const store = job.principal ? new GuardedStore(repo, await accessFor(job.principal, repo, [], options.accessOptions)) : repo;
      const done = await step(job, store, tx, options.pageSize);
      job.status = done ? 'completed' : 'in-progress';
    } catch (err) {
      job.status = 'error';
      job.error = isOperationOutcomeError(err) ? err.message : 'internal error';
      if (!isOperationOutcomeError(err)) logger.error({ err, exportJob: job.id }, 'bulk export failed');
    }
    await saveExportJob(tx, job);
    return true;
  });
}

/** Reads and writes one page of the job; true when the job has nothing more to read. */
async function step(job: ExportJob, store: ResourceStore, tx: Knex.Transaction, pageSize: number): Promise<boolean> {
  if (job.level === 'system') return systemStep(job, store, tx, pageSize);
  let patients = job.level === 'group' ? await groupMembers(store, job.groupId as string) : undefined;
  // `patient`: only those (of the Group's members, at Group level).
  if (job.patients) patients = patients ? patients.filter((id) => job.patients?.includes(id)) : job.patients;
  return compartmentStep(job, store, tx, pageSize, patients);
}

async function systemStep(job: ExportJob, store: ResourceStore, tx: Knex.Transaction, pageSize: number): Promise<boolean> {
  const types = job.types ?? resourceTypes;
  for (;;) {
    const index = job.cursor.typeIndex ?? 0;
    const type = types[index];
    if (type === undefined) return true;
    const request = parseSearchRequest(type, job.since ? { _lastUpdated: `ge${job.since.toISOString()}` } : {}, { strict: true, defaultCount: pageSize, maxCount: pageSize });
    request.count = pageSize;
    const filter = typeFilterCondition(job.typeFilters, type);
    if (filter) request.filters.push(filter);
    request.cursor = job.cursor.afterId ? (JSON.parse(job.cursor.afterId) as PageCursor) : undefined;
    let page;
    try {
      page = await store.search(request);
    } catch (err) {
      // Without `_type`, the types the caller may not read are simply not in the export.
      if (!job.types && isOperationOutcomeError(err) && err.status === 403) {
        job.cursor = { ...job.cursor, typeIndex: index + 1, afterId: undefined };
        continue;
      }
      throw err;
    }
    await writeFiles(job, tx, await withAssociatedData(job, store, tx, page.resources));
    job.cursor = page.hasMore && page.next ? { ...job.cursor, afterId: JSON.stringify(page.next) } : { ...job.cursor, typeIndex: index + 1, afterId: undefined };
    if (page.resources.length > 0 || page.hasMore) return false;
  }
}

/**
 * Patient and Group level: the Patient compartment of every patient (or of the Group's
 * members), as `$everything` reads it without the resources it refers to.
 */
async function compartmentStep(job: ExportJob, store: ResourceStore, tx: Knex.Transaction, pageSize: number, members?: string[]): Promise<boolean> {
  const selection = { types: job.types ? new Set(job.types) : undefined, since: job.since?.toISOString() };
  for (;;) {
    const memberIndex = job.cursor.memberIndex ?? 0;
    const patientId = members ? members[memberIndex] : undefined;
    if (members && patientId === undefined) return true;
    let entries;
    try {
      // A member's first page: the patient must exist and be readable by the caller.
      if (patientId !== undefined && job.cursor.after === undefined) await store.read('Patient', patientId);
      entries = await store.everything({ ...selection, patientId, after: job.cursor.after as EverythingPosition | undefined, limit: pageSize + 1 });
    } catch (err) {
      // A member (or a patient named) the caller may not read, or that is gone, is left out, not fatal to the export.
      if (members && isOperationOutcomeError(err) && [403, 404, 410].includes(err.status)) {
        job.issues.push(issue('warning', err.status === 403 ? 'forbidden' : 'not-found', `Patient/${patientId} was left out of the export: ${err.message}`));
        job.cursor = { ...job.cursor, memberIndex: memberIndex + 1, after: undefined };
        continue;
      }
      throw err;
    }
    const page = entries.slice(0, pageSize);
    const matches = await onceEach(job, tx, page.filter((e) => e.mode === 'match').map((e) => e.resource));
    await writeFiles(job, tx, await withAssociatedData(job, store, tx, await keepMatching(store, job.typeFilters, matches)));
    if (entries.length > pageSize) {
      job.cursor = { ...job.cursor, after: page[page.length - 1].position };
      return false;
    }
    if (!members) return true;
    job.cursor = { ...job.cursor, memberIndex: memberIndex + 1, after: undefined };
    if (page.length > 0) return false;
  }
}

/**
 * Without what this export already wrote: a resource in the compartments of several
 * patients (a Group of its members, an Observation one patient performed on another)
 * comes with each of them, and is written with the first (export_written).
 */
async function onceEach(job: ExportJob, tx: Knex.Transaction, resources: readonly Resource[]): Promise<Resource[]> {
  const shared = new Set(resources.filter((r) => compartmentPatients(r).size > 1).map((r) => `${r.resourceType}/${r.id}`));
  if (shared.size === 0) return [...resources];
  const fresh = await unwrittenResources(tx, job.id, [...shared]);
  return resources.filter((r) => !shared.has(`${r.resourceType}/${r.id}`) || fresh.has(`${r.resourceType}/${r.id}`));
}

async function groupMembers(store: ResourceStore, groupId: string): Promise<string[]> {
  const group = (await store.read('Group', groupId)).resource as Group;
  const ids = (group.member ?? [])
    .filter((m) => !m.inactive)
    .map((m) => referenceIdAnywhere(m.entity?.reference, 'Patient'))
    .filter((id): id is string => id !== undefined);
  return [...new Set(ids)];
}

/** Targets per Provenance search (an OR of references, answered by the parameter's GIN index). */
const TARGETS_PER_SEARCH = 200;

/**
 * `includeAssociatedData`: the page with the Provenance of its other resources (those
 * whose `target` names one), read through the job's store, so only what the caller may
 * read; with LatestProvenanceResources alone, only the most recent (`recorded`, then
 * lastUpdated) for each resource. A Provenance goes into the files once per export,
 * whether as associated data or as a resource of its own type. Without read access to
 * Provenance, the error file says so and the export goes on without it.
 */
async function withAssociatedData(job: ExportJob, store: ResourceStore, tx: Knex.Transaction, resources: readonly Resource[]): Promise<Resource[]> {
  if (!job.associated) return [...resources];
  const targets = resources.filter((r) => r.resourceType !== 'Provenance').map((r) => `${r.resourceType}/${r.id}`);
  const found = new Map<string, Provenance>();
  try {
    for (let i = 0; i < targets.length; i += TARGETS_PER_SEARCH) {
      const request = parseSearchRequest('Provenance', { target: targets.slice(i, i + TARGETS_PER_SEARCH).join(',') }, { strict: true, defaultCount: 1000, maxCount: 1000 });
      request.total = 'none';
      for (;;) {
        const page = await store.search(request);
        for (const p of page.resources as Provenance[]) found.set(p.id as string, p);
        if (!page.hasMore || !page.next) break;
        request.cursor = page.next;
      }
    }
  } catch (err) {
    if (!isOperationOutcomeError(err) || err.status !== 403) throw err;
    const reason = `includeAssociatedData: Provenance is not readable with this access; it was left out (${err.message})`;
    if (!job.issues.some((i) => i.diagnostics === reason)) job.issues.push(issue('warning', 'forbidden', reason, 'includeAssociatedData'));
  }
  const associated = job.associated.includes('RelevantProvenanceResources') ? [...found.values()] : latestFor(new Set(targets), [...found.values()]);
  const onPage = new Set(resources.filter((r) => r.resourceType === 'Provenance').map((r) => r.id));
  const all = [...resources, ...associated.filter((p) => !onPage.has(p.id))];
  const fresh = await unwrittenProvenance(tx, job.id, all.filter((r) => r.resourceType === 'Provenance').map((r) => r.id as string));
  return all.filter((r) => r.resourceType !== 'Provenance' || fresh.has(r.id as string));
}

/** For each target, the Provenance naming it that was recorded last (then updated last, then the greater id). */
function latestFor(targets: ReadonlySet<string>, provenance: readonly Provenance[]): Provenance[] {
  const rank = (p: Provenance): [number, number, string] => [Date.parse(p.recorded ?? '') || 0, Date.parse(p.meta?.lastUpdated ?? '') || 0, p.id ?? ''];
  const later = (a: Provenance, b: Provenance): boolean => {
    const [x, y] = [rank(a), rank(b)];
    return x[0] !== y[0] ? x[0] > y[0] : x[1] !== y[1] ? x[1] > y[1] : x[2] > y[2];
  };
  const latest = new Map<string, Provenance>();
  for (const p of provenance) {
    for (const target of p.target ?? []) {
      // `Type/id`, also from an absolute URL or a versioned reference.
      const key = /([A-Za-z]+\/[A-Za-z0-9\-.]{1,64})(\/_history\/[^/]+)?$/.exec(target.reference ?? '')?.[1];
      if (!key || !targets.has(key)) continue;
      const current = latest.get(key);
      if (!current || later(p, current)) latest.set(key, p);
    }
  }
  return [...new Map([...latest.values()].map((p) => [p.id, p])).values()];
}

/** One NDJSON file per type in the page, numbered in the job's order. */
async function writeFiles(job: ExportJob, tx: Knex.Transaction, resources: readonly Resource[]): Promise<void> {
  const byType = new Map<string, string[]>();
  for (const resource of resources) {
    const lines = byType.get(resource.resourceType) ?? [];
    // Resources read lazily (storage/lazy-resource.ts) are written as stored, unparsed.
    lines.push(job.elements ? JSON.stringify(withElements(resource, job.elements)) : stringifyWithStoredText(resource));
    byType.set(resource.resourceType, lines);
  }
  for (const [type, lines] of byType) {
    const seq = (job.cursor.files ?? 0) + 1;
    await addExportFile(tx, job.id, seq, type, lines);
    job.cursor = { ...job.cursor, files: seq };
    job.exported += lines.length;
  }
}

/**
 * `_elements`: the elements named for the resource's type (`Type.element`) or for every
 * type (`element`), with the mandatory ones, tagged SUBSETTED (fhir/summary.ts); a type
 * none is named for keeps its mandatory elements only, as the kick-off asked.
 */
function withElements(resource: Resource, elements: readonly string[]): Resource {
  const names = elements.flatMap((e) => {
    const dot = e.indexOf('.');
    return dot < 0 ? [e] : e.slice(0, dot) === resource.resourceType ? [e.slice(dot + 1)] : [];
  });
  return applySummary(resource, undefined, names);
}
