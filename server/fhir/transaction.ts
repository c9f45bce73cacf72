import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { badRequest, notFound, preconditionFailed } from '../core/outcome';
import { newId } from '../core/ids';
import type { ResourceStore } from '../storage/resource-store';
import { NewResourceError } from '../storage/write-new-resources';
import type { WriteResult } from '../storage/write-resource';
import { isResourceType } from '../validation/structure-definitions';
import { carriesReferences, entryError, entryLabel, type EntryMethod, type EntryRequest, parseEntryRequest } from './bundle-entries';
import { conditionalReferences, rewriteReferences } from './bundle-references';
import { criteriaKey, resolveConditionalReferences, stripType } from './conditional-references';
import { createdResponse } from './create';
import type { FhirContext, FhirRequest } from './fhir-request';
import { resourceFromBody } from './read-body';
import { responseEntry, runEntry } from './run-entry';
import { nonEmpty } from '../core/non-empty';

/** http.html#trules: deletes, then creates, then updates and patches, then reads. */
export const PROCESSING_ORDER: Record<EntryMethod, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };

/** An entry after the transaction decided which resource it changes. */
interface PlannedEntry {
  entry: EntryRequest;
  /** `Type/id` this entry creates, changes or deletes. */
  identity?: string;
  /** A create's id, given before anything runs so that other entries can refer to it. */
  assignedId?: string;
  /** A conditional create with the same criteria as an earlier entry: the same resource. */
  sameAs?: number;
}

/**
 * A transaction Bundle (https://hl7.org/fhir/R4/http.html#transaction), all or nothing
 * in one database transaction: every entry is resolved to the resource it changes
 * (conditional criteria evaluated under their lock, creates given their ids), references
 * between entries and conditional references are rewritten, and then each entry runs
 * through the same handlers as over HTTP, in the spec's order. Any failing entry fails
 * the whole Bundle with its status and an OperationOutcome naming it.
 */
export async function processTransaction(entries: BundleEntry[], req: FhirRequest, ctx: FhirContext): Promise<Bundle> {
  const requests = entries.map((entry, index) => {
    try {
      return parseEntryRequest(entry, index, ctx.baseUrl);
    } catch (err) {
      throw entryError(err, index, 'request');
    }
  });
  const prefer = { preferReturn: req.preferReturn, preferHandling: req.preferHandling };
  const responses = await ctx.repo.inTransaction(async (repo) => {
    const txCtx: FhirContext = { ...ctx, repo };
    const planned = await plan(requests, repo);
    const undo = await rewriteAll(planned, repo);
    try {
      const results: BundleEntry[] = new Array(planned.length);
      const order = [...planned].sort((a, b) => PROCESSING_ORDER[a.entry.method] - PROCESSING_ORDER[b.entry.method] || a.entry.index - b.entry.index);
      const run = async ({ entry, assignedId }: PlannedEntry): Promise<void> => {
        try {
          const res = await runEntry(entry, txCtx, prefer, assignedId);
          results[entry.index] = responseEntry(entry, res, req.preferReturn, ctx.baseUrl);
        } catch (err) {
          throw entryError(err, entry.index, entryLabel(entry));
        }
      };
      for (const p of order.filter((p) => p.entry.method === 'DELETE')) await run(p);
      await createAll(order.filter(isPlainCreate), txCtx, results, req.preferReturn);
      for (const p of order.filter((p) => p.entry.method !== 'DELETE' && !isPlainCreate(p))) await run(p);
      return results;
    } catch (err) {
      undo();
      throw err;
    }
  });
  return { resourceType: 'Bundle', type: 'transaction-response', ...nonEmpty('entry', responses) };
}

/** A create without conditions: written together with the others (Repository.createMany). */
function isPlainCreate(p: PlannedEntry): boolean {
  return p.entry.method === 'POST' && p.assignedId !== undefined && !p.entry.ifNoneExist && p.entry.queryString === '';
}

async function createAll(creates: PlannedEntry[], ctx: FhirContext, results: BundleEntry[], preferReturn: FhirRequest['preferReturn']): Promise<void> {
  const resources = creates.map(({ entry, assignedId }) => {
    try {
      return { ...resourceFromBody(entry.resource, entry.path), id: assignedId as string };
    } catch (err) {
      throw entryError(err, entry.index, entryLabel(entry));
    }
  });
  let written: WriteResult[];
  try {
    written = await ctx.repo.createMany(resources);
  } catch (err) {
    if (!(err instanceof NewResourceError)) throw err;
    const { entry } = creates[err.position];
    throw entryError(err.cause, entry.index, entryLabel(entry));
  }
  creates.forEach(({ entry }, k) => {
    results[entry.index] = responseEntry(entry, createdResponse(ctx, written[k]), preferReturn, ctx.baseUrl);
  });
}

/** Decides each write entry's resource. Conditional criteria are evaluated here under
 * their advisory lock (held to commit), and conditional updates, patches and deletes
 * become plain ones on what was found, so nothing can change between deciding and doing.
 */
async function plan(requests: EntryRequest[], repo: ResourceStore): Promise<PlannedEntry[]> {
  const planned: PlannedEntry[] = [];
  const changedBy = new Map<string, number>();
  const createsByCriteria = new Map<string, number>();
  for (const request of requests) {
    let entry = request;
    const label = entryLabel(entry);
    try {
      const target = writeTarget(entry);
      const result: PlannedEntry = { entry };
      if (target && entry.method === 'POST') {
        if (entry.ifNoneExist) {
          const key = criteriaKey(target.type, entry.ifNoneExist);
          const earlier = createsByCriteria.get(key);
          if (earlier !== undefined) {
            result.sameAs = earlier;
            result.identity = planned[earlier].identity;
          } else {
            const ids = await repo.matchCriteria(target.type, stripType(target.type, entry.ifNoneExist), true);
            if (ids.length > 1) throw preconditionFailed(`ifNoneExist "${entry.ifNoneExist}" matches more than one ${target.type}`);
            if (ids.length === 0) result.assignedId = newId();
            result.identity = `${target.type}/${ids[0] ?? result.assignedId}`;
            createsByCriteria.set(key, entry.index);
          }
        } else {
          result.assignedId = newId();
          result.identity = `${target.type}/${result.assignedId}`;
        }
      } else if (target && target.id === undefined) {
        entry = await resolveConditional(entry, target.type, repo);
        result.entry = entry;
        result.identity = entry.queryString === '' ? entry.path : undefined;
      } else if (target) {
        result.identity = `${target.type}/${target.id}`;
      }
      if (result.identity !== undefined && result.sameAs === undefined) {
        const other = changedBy.get(result.identity);
        if (other !== undefined) {
          throw badRequest(`Bundle.entry[${other}] and Bundle.entry[${entry.index}] both change ${result.identity}; a transaction may change a resource once`);
        }
        changedBy.set(result.identity, entry.index);
      }
      planned.push(result);
    } catch (err) {
      throw entryError(err, entry.index, label);
    }
  }
  return planned;
}

/** The type (and id, when in the URL) a create, update, patch or delete entry writes. */
function writeTarget(entry: EntryRequest): { type: string; id?: string } | undefined {
  if (entry.method === 'GET' || entry.method === 'HEAD') return undefined;
  const segments = entry.path.split('/');
  if (!isResourceType(segments[0] ?? '')) return undefined;
  if (entry.method === 'POST') return segments.length === 1 ? { type: segments[0] } : undefined;
  if (segments.length === 1) return entry.queryString === '' ? undefined : { type: segments[0] };
  return segments.length === 2 && !segments[1].startsWith('$') ? { type: segments[0], id: decodeURIComponent(segments[1]) } : undefined;
}

/** PUT/PATCH/DELETE `Type?criteria` → the same on `Type/id` of the one match. */
async function resolveConditional(entry: EntryRequest, type: string, repo: ResourceStore): Promise<EntryRequest> {
  const ids = await repo.matchCriteria(type, entry.queryString, true);
  if (ids.length > 1) {
    throw preconditionFailed(`The criteria "${entry.queryString}" match more than one ${type}`);
  }
  if (ids.length === 1) {
    return withTarget(entry, type, ids[0]);
  }
  if (entry.method === 'PATCH') throw notFound(`No ${type} matches "${entry.queryString}"`);
  if (entry.method === 'DELETE') return entry;
  // Conditional update without a match creates, with the resource's own id when it has one.
  return withTarget(entry, type, entry.resource?.id ?? newId());
}

function withTarget(entry: EntryRequest, type: string, id: string): EntryRequest {
  const resource = entry.resource;
  if (entry.method === 'PUT' && resource) {
    if (resource.id !== undefined && resource.id !== id) {
      throw badRequest(`Resource id ${resource.id} does not match ${type}/${id} found by the criteria`, `${type}.id`);
    }
    return { ...entry, path: `${type}/${id}`, queryString: '', resource: { ...resource, id } as Resource };
  }
  return { ...entry, path: `${type}/${encodeURIComponent(id)}`, queryString: '' };
}

/** Rewrites every entry's references; returns how to undo it all. */
async function rewriteAll(planned: PlannedEntry[], repo: ResourceStore): Promise<() => void> {
  const byFullUrl = new Map<string, string>();
  const inBundle = new Map<string, string>();
  for (const { entry, identity } of planned) {
    if (identity === undefined) continue;
    if (entry.fullUrl) byFullUrl.set(entry.fullUrl, identity);
    if (entry.method === 'POST' && entry.ifNoneExist) {
      const type = identity.slice(0, identity.indexOf('/'));
      inBundle.set(criteriaKey(type, entry.ifNoneExist), identity);
    }
  }
  const firstUse = new Map<string, number>();
  for (const { entry } of planned) {
    if (entry.resource && carriesReferences(entry)) {
      for (const reference of conditionalReferences(entry.resource)) {
        if (!firstUse.has(reference)) firstUse.set(reference, entry.index);
      }
    }
  }
  const conditional = await resolveConditionalReferences(firstUse.keys(), repo, inBundle, (reference) => `Bundle.entry[${firstUse.get(reference)}]`);
  const undos: (() => void)[] = [];
  try {
    for (const { entry } of planned) {
      if (entry.resource && carriesReferences(entry)) {
        undos.push(rewriteReferences(entry.resource, byFullUrl, conditional, `Bundle.entry[${entry.index}]`, entry.fullUrl));
      }
    }
  } catch (err) {
    undos.forEach((undo) => undo());
    throw err;
  }
  return () => undos.forEach((undo) => undo());
}
