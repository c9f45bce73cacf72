import type { Context, Middleware } from 'koa';
import { GuardedStore } from '../access/guarded-store';
import type { Principal } from '../access/principal';
import { ScopeAccess } from '../access/scope-access';
import { methodNotAllowed, notFound } from '../core/outcome';
import type { FhirContext, FhirRequest, FhirResponse, PreferReturn } from '../fhir/fhir-request';
import { preferredAnswer } from '../fhir/prefer-return';
import { pathFields } from '../fhir/route-matcher';
import { readBody } from './read-body';
import { writeResource } from './write-response';

// The verifier caches Principals per token, so the parsed scopes are reused across a token's requests.
const accessByPrincipal = new WeakMap<Principal, ScopeAccess>();

function scopeAccess(principal: Principal): ScopeAccess {
  let access = accessByPrincipal.get(principal);
  if (!access) accessByPrincipal.set(principal, (access = new ScopeAccess(principal)));
  return access;
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** Mounts the FHIR route table under /fhir: the only place where Koa meets FHIR handlers. */
export function fhirRouter(fhir: FhirContext): Middleware {
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
      throw notFound(
        found.unknownType ? `Unknown resource type "${found.unknownType}"` : `No FHIR endpoint at ${ctx.method} ${ctx.path}`
      );
    }
    const { route, params } = found;
    const parsed = BODY_METHODS.has(ctx.method)
      ? await readBody(ctx, fhir.config.maxBodyBytes, { form: route.path.endsWith('/_search') })
      : {};
    const req: FhirRequest = {
      method: ctx.method,
      ...pathFields(route, params),
      query: ctx.query,
      queryString: ctx.querystring,
      body: parsed.body,
      contentType: parsed.mediaType,
      ifMatch: ctx.get('If-Match') || undefined,
      ifNoneExist: ctx.get('If-None-Exist') || undefined,
      ifNoneMatch: ctx.get('If-None-Match') || undefined,
      ifModifiedSince: ctx.get('If-Modified-Since') || undefined,
      ...parsePrefer(ctx.get('Prefer')),
    };
    const principal = ctx.state.principal;
    const scoped = principal ? { ...fhir, principal, repo: new GuardedStore(fhir.repo, scopeAccess(principal)) } : fhir;
    respond(ctx, req, await route.handler(req, scoped));
  };
}

function parsePrefer(header: string): Pick<FhirRequest, 'preferReturn' | 'preferHandling'> {
  const result: Pick<FhirRequest, 'preferReturn' | 'preferHandling'> = {};
  for (const part of header.split(/[,;]/)) {
    const [key, value] = part.split('=').map((s) => s.trim().replace(/^"|"$/g, ''));
    if (key === 'return' && ['minimal', 'representation', 'OperationOutcome'].includes(value)) {
      result.preferReturn = value as PreferReturn;
    } else if (key === 'handling' && (value === 'strict' || value === 'lenient')) {
      result.preferHandling = value;
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
