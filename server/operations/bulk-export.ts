import type { Principal } from '../access/principal';
import type { OperationOutcomeIssue, Parameters } from '@medplum/fhirtypes';
import { badRequest, informational, internalError, issue, notFound, outcome } from '../core/outcome';
import type { FhirContext, FhirHandler, FhirRequest, FhirResponse } from '../fhir/fhir-request';
import { primitiveFormatError } from '../validation/primitive-formats';
import { isResourceType } from '../validation/structure-definitions';
import { referenceIdAnywhere } from '../core/references';
import { type AssociatedData, type ExportJob, type ExportJobStore, type ExportLevel, exportExpired } from '../storage/export-jobs';
import { parseTypeFilters } from './export-type-filter';

/** `_outputFormat` values meaning NDJSON (Bulk Data 2.0 lists the abbreviations servers must accept). */
const NDJSON_FORMATS = new Set(['application/fhir+ndjson', 'application/ndjson', 'ndjson']);
/** Kick-off parameters of the specification this server does not apply: refused rather than ignored (unless lenient). */
const UNSUPPORTED = ['_until'];
/** `includeAssociatedData` values applied (the CodeSystem include-associated-data of Bulk Data 2.0). */
const ASSOCIATED: readonly AssociatedData[] = ['LatestProvenanceResources', 'RelevantProvenanceResources'];
/** The name of a job's error file (`[job id].errors`) beside its numbered output files. */
const ERROR_FILE = 'errors';

/**
 * Bulk Data kick-off (https://hl7.org/fhir/uv/bulkdata/export.html): `GET [base]/$export`,
 * `[base]/Patient/$export`, `[base]/Group/[id]/$export` (or POST with a Parameters body) with `Prefer: respond-async` →
 * 202 and a status URL in Content-Location. The job runs in the background
 * (jobs/export-runner.ts) with the caller's access; `_type`, `_typeFilter`
 * (operations/export-type-filter.ts), `_since`, `_outputFormat` (NDJSON), `_elements`
 * (root elements, `Type.element` or `element` for every type; mandatory ones are kept and
 * the resource is tagged SUBSETTED), `includeAssociatedData` (the Provenance of what is
 * exported: all of it, or the latest for each resource) and, at Patient and Group level,
 * `patient` (the patients whose compartments are exported; for a Group, those of its
 * members) are applied.
 */
export const exportKickoff: FhirHandler = async (req, ctx) => {
  const jobs = exportJobs(ctx);
  if (!req.preferAsync) throw badRequest('$export is asynchronous: send Prefer: respond-async');
  // A POST kick-off carries the same parameters in a Parameters body.
  if (req.method === 'POST') req = { ...req, query: { ...req.query, ...parametersAsQuery(req.body) } };
  const level: ExportLevel = req.resourceType === 'Group' ? 'group' : req.resourceType === 'Patient' ? 'patient' : 'system';
  const format = single(req, '_outputFormat');
  if (format !== undefined && !NDJSON_FORMATS.has(format)) throw badRequest(`_outputFormat ${format} is not supported; use application/fhir+ndjson`, '_outputFormat');
  const sinceText = single(req, '_since');
  const since = sinceText === undefined ? undefined : instant(sinceText);
  const types = single(req, '_type')?.split(',').map((t) => t.trim()).filter((t) => t !== '');
  for (const type of types ?? []) if (!isResourceType(type)) throw badRequest(`_type: ${type} is not a resource type`, '_type');
  const filterValues = req.query._typeFilter;
  // With Prefer: handling=lenient, what is ignored is said in the manifest's error file (Bulk Data 2.0 kick-off).
  const issues: OperationOutcomeIssue[] = [];
  const typeFilters = parseTypeFilters(
    filterValues === undefined ? [] : Array.isArray(filterValues) ? filterValues : [filterValues],
    types && types.length > 0 ? types : undefined,
    req.preferHandling === 'lenient',
    (reason) => issues.push(issue('warning', 'not-supported', reason, '_typeFilter'))
  );
  const unsupported = UNSUPPORTED.filter((name) => req.query[name] !== undefined);
  if (req.preferHandling !== 'lenient') {
    if (unsupported.length > 0) throw badRequest(`$export: ${unsupported.join(', ')} not supported here (send Prefer: handling=lenient to have it ignored)`, unsupported[0]);
  }
  for (const name of unsupported) issues.push(issue('warning', 'not-supported', `${name} is not supported here; it was ignored`, name));
  const elements = exportElements(req);
  const patients = patientParameter(req, level);
  const associated = associatedData(req, issues);
  // The Group must exist and be readable by the caller now, not only when the job runs.
  if (level === 'group') await ctx.repo.read('Group', req.id as string);
  const path = level === 'system' ? '$export' : level === 'patient' ? 'Patient/$export' : `Group/${req.id}/$export`;
  const job = await jobs.create({
    level,
    groupId: level === 'group' ? req.id : undefined,
    types: types && types.length > 0 ? [...new Set(types)] : undefined,
    typeFilters,
    elements,
    patients,
    issues,
    associated,
    since,
    request: `${ctx.baseUrl}/${path}${req.queryString ? `?${req.queryString}` : ''}`,
    principal: ctx.principal,
  });
  return {
    status: 202,
    headers: { 'Content-Location': statusUrl(ctx, job.id) },
    resource: informational(`Export ${job.id} accepted: poll ${statusUrl(ctx, job.id)}`),
  };
};

/** `GET` on a status URL: 202 while running (X-Progress), 200 with the manifest when done, 500 with the error. */
export const exportStatus: FhirHandler = async (req, ctx): Promise<FhirResponse> => {
  const job = await ownJob(req, ctx);
  switch (job.status) {
    case 'accepted':
    case 'in-progress':
      return {
        status: 202,
        headers: { 'X-Progress': `${job.exported} resources exported`, 'Retry-After': '2' },
        resource: informational(`Export in progress: ${job.exported} resources so far`),
      };
    case 'error':
      throw internalError(`The export failed: ${job.error ?? 'unknown error'}`);
    default: {
      const files = await exportJobs(ctx).files(job.id);
      return {
        status: 200,
        headers: { Expires: new Date(job.updatedAt.getTime() + ctx.config.exportRetentionSeconds * 1000).toUTCString() },
        document: {
          contentType: 'application/json',
          json: {
            transactionTime: job.transactionTime.toISOString(),
            request: job.request,
            requiresAccessToken: job.principal !== undefined,
            output: files.map((f) => ({ type: f.resourceType, url: `${ctx.baseUrl}/$export-file/${job.id}.${f.seq}`, count: f.count })),
            // One OperationOutcome a line: parameters ignored, patients left out.
            error: job.issues.length > 0 ? [{ type: 'OperationOutcome', url: `${ctx.baseUrl}/$export-file/${job.id}.${ERROR_FILE}`, count: job.issues.length }] : [],
          },
        },
      };
    }
  }
};

/** `DELETE` on a status URL: the job stops (or is forgotten) and its files go; its status URL is then 404. */
export const exportCancel: FhirHandler = async (req, ctx) => {
  const job = await ownJob(req, ctx);
  await exportJobs(ctx).cancel(job.id);
  return { status: 202, resource: informational(`Export ${job.id} cancelled`) };
};

/** One output file, `[job id].[n]`, as NDJSON, to the client that asked for the export. */
export const exportFile: FhirHandler = async (req, ctx) => {
  const match = /^([0-9a-f-]{36})\.(\d{1,9}|errors)$/.exec(req.id ?? '');
  if (!match) throw notFound(`No export file ${req.id}`);
  const job = await ownJob({ ...req, id: match[1] }, ctx);
  const ndjson =
    match[2] === ERROR_FILE
      ? job.issues.length > 0
        ? job.issues.map((i) => JSON.stringify(outcome([i]))).join('\n') + '\n'
        : undefined
      : await exportJobs(ctx).file(job.id, Number(match[2]));
  if (ndjson === undefined) throw notFound(`No export file ${req.id}`);
  return { status: 200, content: { contentType: 'application/fhir+ndjson', data: Buffer.from(ndjson, 'utf8') } };
};

function exportJobs(ctx: FhirContext): ExportJobStore {
  if (!ctx.exportJobs) throw internalError('Bulk export is not available in this process');
  return ctx.exportJobs;
}

function statusUrl(ctx: FhirContext, id: string): string {
  return `${ctx.baseUrl}/$export-status/${id}`;
}

/** The job, for the client (and user) that started it only: to anybody else it does not exist. */
async function ownJob(req: FhirRequest, ctx: FhirContext): Promise<ExportJob> {
  const job = await exportJobs(ctx).read(req.id ?? '');
  if (!job || job.status === 'cancelled' || !sameCaller(job.principal, ctx.principal)) throw notFound(`No export ${req.id}`);
  // Past its retention (the Expires the manifest gave) it is gone, whether or not a job round has deleted it yet.
  if (exportExpired(job, ctx.config.exportRetentionSeconds)) throw notFound(`Export ${req.id} has expired`);
  return job;
}

function sameCaller(owner: Principal | undefined, caller: Principal | undefined): boolean {
  if (!owner) return true;
  return caller !== undefined && caller.clientId === owner.clientId && (caller.userId ?? '') === (owner.userId ?? '');
}

/** A POST kick-off's Parameters as the query parameters of a GET one (`_type` may repeat: its values are joined). */
function parametersAsQuery(body: unknown): Record<string, string | string[]> {
  if (body === undefined) return {};
  const parameters = body as Parameters;
  if (parameters?.resourceType !== 'Parameters') throw badRequest('A POST $export takes a Parameters resource (or no body)');
  const query: Record<string, string[]> = {};
  for (const p of parameters.parameter ?? []) {
    const value = p.valueString ?? p.valueInstant ?? p.valueCode ?? p.valueDateTime ?? p.valueReference?.reference;
    if (!p.name || value === undefined) throw badRequest(`$export parameter ${p.name ?? '(unnamed)'} needs a value (valueString, valueInstant …)`, p.name);
    (query[p.name] ??= []).push(value);
  }
  const record: Record<string, string | string[]> = {};
  for (const [name, values] of Object.entries(query)) record[name] = name === '_type' || name === '_elements' ? values.join(',') : values.length === 1 ? values[0] : values;
  return record;
}

/**
 * `includeAssociatedData` (comma-separated or repeated): the values applied. Another value
 * (custom ones start with `_`) is a 400, or with Prefer: handling=lenient ignored and said
 * in the error file.
 */
function associatedData(req: FhirRequest, issues: OperationOutcomeIssue[]): AssociatedData[] | undefined {
  const given = req.query.includeAssociatedData;
  if (given === undefined) return undefined;
  const values = (Array.isArray(given) ? given : [given]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
  const known = new Set<AssociatedData>();
  for (const value of values) {
    if ((ASSOCIATED as readonly string[]).includes(value)) known.add(value as AssociatedData);
    else if (req.preferHandling === 'lenient') issues.push(issue('warning', 'not-supported', `includeAssociatedData ${value} is not supported here; it was ignored`, 'includeAssociatedData'));
    else throw badRequest(`includeAssociatedData ${value} is not supported; use ${ASSOCIATED.join(' or ')} (or send Prefer: handling=lenient to have it ignored)`, 'includeAssociatedData');
  }
  return known.size > 0 ? [...known] : undefined;
}

function single(req: FhirRequest, name: string): string | undefined {
  const value = req.query[name];
  if (Array.isArray(value)) throw badRequest(`${name} may be given once`, name);
  return value;
}

function instant(text: string): Date {
  if (primitiveFormatError('instant', text) !== undefined) throw badRequest(`_since must be a FHIR instant (e.g. 2024-01-01T00:00:00Z), got ${text}`, '_since');
  return new Date(text);
}

/** `_elements`: root elements only, `Type.element` (that type) or `element` (every type that has it). */
function exportElements(req: FhirRequest): string[] | undefined {
  const text = single(req, '_elements');
  if (text === undefined) return undefined;
  const elements = [...new Set(text.split(',').map((e) => e.trim()).filter((e) => e !== ''))];
  for (const element of elements) {
    const parts = element.split('.');
    const valid = parts.length === 1 ? /^[a-z][A-Za-z0-9]*$/.test(parts[0]) : parts.length === 2 && isResourceType(parts[0]) && /^[a-z][A-Za-z0-9]*$/.test(parts[1]);
    if (!valid) throw badRequest(`_elements: ${element} is not a root element ([type].[element] or [element])`, '_elements');
  }
  return elements.length > 0 ? elements : undefined;
}

/**
 * `patient` (Patient and Group level only: a system export is not about patients): the
 * references, in a POST body or repeated in the query, as ids.
 */
function patientParameter(req: FhirRequest, level: ExportLevel): string[] | undefined {
  const raw = req.query.patient;
  if (raw === undefined) return undefined;
  if (level === 'system') throw badRequest('patient applies to Patient and Group level exports, not to a system export', 'patient');
  const references = (Array.isArray(raw) ? raw : [raw]).flatMap((r) => r.split(',')).map((r) => r.trim()).filter((r) => r !== '');
  const ids = references.map((reference) => {
    const id = referenceIdAnywhere(reference, 'Patient');
    if (!id) throw badRequest(`patient: ${reference} is not a reference to a Patient`, 'patient');
    return id;
  });
  return [...new Set(ids)];
}
