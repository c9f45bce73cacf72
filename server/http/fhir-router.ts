import type { Resource } from '@medplum/fhirtypes';
import type { Context, Middleware } from 'koa';
import { GuardedStore } from '../access/guarded-store';
import type { Principal } from '../access/principal';
import type { ConsentWatch } from '../access/consent-watch';
import { accessFor } from '../access/principal-access';
import type { AuditRecorder } from '../audit/audit-recorder';
import { runAudited } from '../audit/audited-handler';
import { patientsIn } from '../audit/audit-event';
import { methodNotAllowed } from '../core/outcome';
import type { FhirContext, FhirRequest, FhirResponse, PreferReturn } from '../fhir/fhir-request';
import { preferredAnswer } from '../fhir/prefer-return';
import { noRoute, pathFields } from '../fhir/route-matcher';
import { readBody } from './read-body';
import { writeContent, writeDocument, writeResource } from './write-response';
import { binaryFromUpload } from '../fhir/binary-content';
import { assertValidParameters } from '../operations/operation-parameters';

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * Mounts the FHIR route table under /fhir: the only place where Koa meets FHIR handlers.
 * With `audit`, every routed interaction is recorded as an AuditEvent (audit/audited-handler.ts).
 */
export function fhirRouter(fhir: FhirContext, audit?: AuditRecorder, consentWatch?: ConsentWatch): Middleware {
  const accessOptions = { patientDependants: fhir.config.patientDependants, consentWatch };
  return async (ctx, next) => {
    if (ctx.path !== '/fhir' && !ctx.path.startsWith('/fhir/')) {
      return next();
    }
    const found = fhir.findRoute(ctx.method, ctx.path.slice('/fhir'.length));
    if (!found.route) {
      if (found.allowed.length > 0) {
        ctx.set('Allow', found.allowed.join(', '));
        throw methodNotAllowed(`${ctx.method} is not allowed on ${ctx.path}; allowed: ${found.allowed.join(', ')}`);
      }
      throw noRoute(found, ctx.method, ctx.path);
    }
    const { route, params } = found;
    ctx.state.routePath = route.path;
    const fields = pathFields(route, params);
    // binary.html#rest: a Binary created or updated with a body that is not FHIR JSON stores that body.
    const binaryUpload = fields.resourceType === 'Binary' && (route.interaction === 'create' || route.interaction === 'update');
    const parsed = BODY_METHODS.has(ctx.method)
      ? await readBody(ctx, fhir.config.maxBodyBytes, { form: route.form === true || route.path.endsWith('/_search'), raw: binaryUpload })
      : {};
    if (parsed.raw) {
      parsed.body = binaryFromUpload(parsed.raw, ctx.get('Content-Type'), ctx.get('X-Security-Context') || undefined, fields.id);
    }
    const req: FhirRequest = {
      method: ctx.method,
      ...fields,
      query: ctx.query,
      queryString: ctx.querystring,
      body: parsed.body,
      contentType: parsed.mediaType,
      ifMatch: ctx.get('If-Match') || undefined,
      ifNoneExist: ctx.get('If-None-Exist') || undefined,
      ifNoneMatch: ctx.get('If-None-Match') || undefined,
      ifModifiedSince: ctx.get('If-Modified-Since') || undefined,
      ...parsePrefer(ctx.get('Prefer')),
      sourceAddress: ctx.ip,
      purposeOfUse: purposeOfUse(ctx.get('X-Purpose-Of-Use')),
      alternativeType: ctx.state.alternativeType,
      binaryAccept: ctx.state.binaryAccept,
    };
    const principal: Principal | undefined = ctx.state.principal;
    const access = principal ? await accessFor(principal, fhir.repo, req.purposeOfUse, accessOptions) : undefined;
    const handle = async (repo: FhirContext['repo']): Promise<FhirResponse> => {
      // An operation's Parameters (not a Parameters resource to validate: POST Parameters/$validate), refused as the call's own outcome.
      if (route.operation && !(route.operation === 'validate' && fields.resourceType === 'Parameters')) assertValidParameters(req.body);
      const res = await route.handler(req, principal && access ? { ...fhir, principal, repo: new GuardedStore(repo, access) } : { ...fhir, repo });
      // What a break-the-glass grant alone let them see is recorded as such (purpose of use BTG).
      if (access && access.emergencyPatients.length > 0 && res.resource && touches(res.resource, access.emergencyPatients)) {
        req.purposeOfUse = [...new Set([...(req.purposeOfUse ?? []), 'BTG'])];
      }
      return res;
    };
    ctx.state.audited = audit !== undefined;
    const res = audit
      ? await runAudited(audit, { route, req, principal, description: `${ctx.method} ${ctx.path}`, repo: fhir.repo, handle })
      : await handle(fhir.repo);
    // Before answering: the next request must see a Consent this one wrote (consent-watch.ts).
    if (consentWatch && mayWriteConsents(route, req)) consentWatch.changed();
    respond(ctx, req, res);
  };
}

function touches(resource: Resource, patients: readonly string[]): boolean {
  const answered = patientsIn(resource);
  return patients.some((id) => answered.has(`Patient/${id}`));
}

/** Whether a request may have written a Consent: on the type itself, in a Bundle, or by an operation (break-the-glass writes one). */
function mayWriteConsents(route: { operation?: string; systemInteraction?: unknown }, req: FhirRequest): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return false;
  return req.resourceType === 'Consent' || route.systemInteraction !== undefined || route.operation !== undefined;
}

/** `X-Purpose-Of-Use: TREAT` or `ETREAT, BTG`: v3-ActReason codes (docs/audit.md). */
function purposeOfUse(header: string): string[] | undefined {
  const codes = header.split(',').map((c) => c.trim()).filter((c) => /^[A-Za-z0-9_-]{1,64}$/.test(c));
  return codes.length > 0 ? codes : undefined;
}

function parsePrefer(header: string): Pick<FhirRequest, 'preferReturn' | 'preferHandling' | 'preferAsync'> {
  const result: Pick<FhirRequest, 'preferReturn' | 'preferHandling' | 'preferAsync'> = {};
  for (const part of header.split(/[,;]/)) {
    const [key, value] = part.split('=').map((s) => s.trim().replace(/^"|"$/g, ''));
    if (key === 'return' && ['minimal', 'representation', 'OperationOutcome'].includes(value)) {
      result.preferReturn = value as PreferReturn;
    } else if (key === 'handling' && (value === 'strict' || value === 'lenient')) {
      result.preferHandling = value;
    } else if (key === 'respond-async') {
      result.preferAsync = true;
    }
  }
  return result;
}

function respond(ctx: Context, req: FhirRequest, res: FhirResponse): void {
  for (const [name, value] of Object.entries(res.headers ?? {})) {
    ctx.set(name, value);
  }
  ctx.status = res.status;
  if (res.status === 304 || res.status === 204) {
    return;
  }
  if (res.document) {
    writeDocument(ctx, res.document);
    return;
  }
  if (res.content) {
    writeContent(ctx, res.content);
    return;
  }
  const answer = preferredAnswer(res, req.method, req.preferReturn);
  const body = answer.outcome ?? answer.resource;
  if (body) {
    writeResource(ctx, body);
  } else if (res.honoursPreferReturn) {
    // return=minimal: an explicitly empty body (Koa would otherwise send the status text).
    ctx.body = null;
    ctx.status = res.status;
  }
}
