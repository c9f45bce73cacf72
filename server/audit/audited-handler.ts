import { APPEND_ONLY_TYPES } from '../core/append-only';
import type { AuditEvent, Resource } from '@medplum/fhirtypes';
import type { Principal } from '../access/principal';
import { isOperationOutcomeError, methodNotAllowed } from '../core/outcome';
import type { ResourceStore } from '../storage/resource-store';
import type { WriteResult } from '../storage/write-resource';
import { type InteractionKind, interactionAuditEvent } from './audit-event';
import type { AuditRecorder } from './audit-recorder';

// Structural views of fhir/ types: audit sits below fhir/ in the dependency order.
export interface AuditedRoute {
  method: string;
  interaction?: string;
  systemInteraction?: string | string[];
  operation?: string;
  conditional?: string;
  compartment?: string;
  auditPurposeOfUse?: string[];
}

export interface AuditedRequest {
  method: string;
  resourceType?: string;
  id?: string;
  versionId?: string;
  queryString: string;
  body?: unknown;
  sourceAddress?: string;
  purposeOfUse?: string[];
  preferReturn?: string;
}

export interface AuditedResponse {
  status: number;
  resource?: Resource;
  audit?: { reason?: string; entities?: string[] };
}

export interface AuditedCall<R extends AuditedResponse> {
  route: AuditedRoute;
  req: AuditedRequest;
  principal?: Principal;
  /** e.g. `GET /fhir/Patient/1`. */
  description: string;
  /** The server's Repository (writes get one bound to their transaction instead). */
  repo: ResourceStore;
  /** Runs the handler on `repo` (the caller confines it to the principal). */
  handle: (repo: ResourceStore) => Promise<R>;
}

const CHANGES = new Set(['update', 'patch', 'delete']);

/**
 * Interactions that write one resource (or none): their AuditEvent rides on the write's
 * statement (AuditRecorder.runFusedWrite). A SearchParameter's write changes the schema
 * in a transaction of its own and goes through runWrite.
 */
const FUSED = new Set(['create', 'update', 'patch', 'delete']);

/** The status the handlers of FUSED interactions (fhir/create, update, patch, delete) answer a written `result` with. */
function fusedStatus(subtype: string, req: AuditedRequest, result: WriteResult): number {
  if (subtype === 'delete') return req.preferReturn === 'OperationOutcome' ? 200 : 204;
  return result.created ? 201 : 200;
}

/** The BALP subtype (restful-interaction code) and action of a routed request. */
export function interactionKind(route: AuditedRoute, req: AuditedRequest): InteractionKind {
  if (route.operation) return { subtype: 'operation', action: 'E', operation: route.operation };
  if (route.systemInteraction) {
    const system = Array.isArray(route.systemInteraction) ? route.systemInteraction : [route.systemInteraction];
    if (system.includes('transaction')) {
      return { subtype: (req.body as { type?: string } | undefined)?.type === 'batch' ? 'batch' : 'transaction', action: 'E' };
    }
    return { subtype: system[0], action: 'R' };
  }
  const interaction = route.interaction ?? (route.compartment ? 'search-type' : undefined) ?? conditionalInteraction(route);
  switch (interaction) {
    case 'create':
      return { subtype: 'create', action: 'C' };
    case 'update':
    case 'patch':
      return { subtype: interaction, action: 'U' };
    case 'delete':
      return { subtype: 'delete', action: 'D' };
    case undefined:
      return { subtype: 'capabilities', action: 'R' };
    default:
      return { subtype: interaction, action: 'R' };
  }
}

function conditionalInteraction(route: AuditedRoute): string | undefined {
  if (route.conditional === 'update') return 'update';
  if (route.conditional === 'patch') return 'patch';
  if (route.conditional === 'delete') return 'delete';
  return undefined;
}

/** Writes run in one transaction with their AuditEvent; reads (and batches, whose entries commit on their own) are group-committed. */
function isWrite(kind: InteractionKind, method: string): boolean {
  if (kind.subtype === 'batch') return false;
  if (kind.subtype.startsWith('search') || kind.subtype === 'capabilities') return false;
  return method !== 'GET' && method !== 'HEAD';
}

/**
 * Runs one FHIR interaction with its AuditEvent (docs/audit.md):
 *  - a write runs in one database transaction with its AuditEvent; when the handler
 *    throws, the write is rolled back and the failure is recorded on its own;
 *  - anything else is answered only after its AuditEvent is committed (group commit);
 *  - update, patch and delete of AuditEvent are refused (405) before anything runs.
 */
export async function runAudited<R extends AuditedResponse>(recorder: AuditRecorder, call: AuditedCall<R>): Promise<R> {
  const kind = interactionKind(call.route, call.req);
  // Read when the event is built: the handler may add one (a read under a break-the-glass grant adds BTG).
  const purposeOfUse = (): string[] | undefined =>
    call.route.auditPurposeOfUse ? [...new Set([...call.route.auditPurposeOfUse, ...(call.req.purposeOfUse ?? [])])] : call.req.purposeOfUse;
  const event = (status: number, answered?: Resource, outcomeText?: string, detail?: AuditedResponse['audit']): AuditEvent =>
    interactionAuditEvent(
      {
        kind,
        description: call.description,
        resourceType: call.req.resourceType,
        id: call.req.id ?? createdId(kind, answered),
        versionId: call.req.versionId,
        queryString: call.req.queryString,
        status,
        outcomeText,
        answered,
        principal: call.principal,
        sourceAddress: call.req.sourceAddress,
        purposeOfUse: purposeOfUse(),
        reason: detail?.reason,
        entities: detail?.entities,
      },
      recorder.observer
    );
  let arrived: (() => void) | undefined;
  try {
    if (call.req.resourceType === 'AuditEvent' && CHANGES.has(kind.subtype)) {
      throw methodNotAllowed('AuditEvents are append-only: update, patch and delete are refused');
    }
    if (isWrite(kind, call.req.method)) {
      if (FUSED.has(kind.subtype) && !UNFUSED_TYPES.has(call.req.resourceType ?? '')) {
        return await recorder.runFusedWrite(
          (repo) => call.handle(repo),
          (result) => [event(fusedStatus(kind.subtype, call.req, result), result.version.resource)],
          (res) => [event(res.status, res.resource, undefined, res.audit)]
        );
      }
      return await recorder.runWrite(
        (repo) => call.handle(repo),
        (res) => [event(res.status, res.resource, undefined, res.audit)]
      );
    }
    arrived = recorder.expect();
    if (mayAnswerAuditEvents(kind, call)) await recorder.settled();
    const res = await call.handle(call.repo);
    await recorder.record([event(res.status, res.resource, undefined, res.audit)], arrived);
    return res;
  } catch (err) {
    const status = isOperationOutcomeError(err) ? err.status : 500;
    const text = err instanceof Error ? err.message : String(err);
    // The failure's own record; if even that fails, the original error is what the client sees.
    await recorder.record([event(status, undefined, status >= 500 ? 'internal error' : text)], arrived).catch(() => undefined);
    throw err;
  } finally {
    // Whatever happened, this read no longer holds up other reads' batch (idempotent).
    arrived?.();
  }
}

/**
 * Whether a read may answer AuditEvents: of that type, at system level (search, history,
 * Bundles), in a compartment, or naming them (or `*`) in `_type`, `_include`,
 * `_revinclude`. Such a request waits until this process's journal is stored, so that an
 * auditor sees every access answered before.
 */
function mayAnswerAuditEvents(kind: InteractionKind, call: AuditedCall<AuditedResponse>): boolean {
  if (kind.subtype === 'capabilities') return false;
  if (call.req.resourceType === undefined || call.req.resourceType === 'AuditEvent' || call.route.compartment !== undefined) return true;
  const query = call.req.queryString;
  return query.includes('AuditEvent') || query.includes('*') || /%2a/i.test(query);
}

/** Types whose writes run in a transaction of their own making (schema or trigger changes): their AuditEvent cannot ride on the statement. */
const UNFUSED_TYPES = new Set(['SearchParameter', 'Subscription']);

function createdId(kind: InteractionKind, answered: Resource | undefined): string | undefined {
  return kind.subtype === 'create' && answered?.resourceType !== 'OperationOutcome' ? answered?.id : undefined;
}

type AnyHandler = (req: { method: string; resourceType?: string }, ctx: unknown) => Promise<unknown>;

/** Wraps a route finder so that update, patch and delete of AuditEvent are refused also inside Bundles. */
export function refuseAuditEventChanges<M>(find: (method: string, path: string) => M): (method: string, path: string) => M {
  return (method, path) => {
    const match = find(method, path);
    const route = (match as { route?: { method: string; handler: AnyHandler } }).route;
    if (!route || !['PUT', 'PATCH', 'DELETE'].includes(route.method)) return match;
    const handler: AnyHandler = async (req, ctx) => {
      if (APPEND_ONLY_TYPES.has(req.resourceType ?? '')) throw methodNotAllowed('AuditEvents are append-only: update, patch and delete are refused');
      return route.handler(req, ctx);
    };
    return { ...match, route: { ...route, handler } } as M;
  };
}
