import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { informational, methodNotAllowed, notFound } from '../core/outcome';
import type { FhirContext, FhirRequest, FhirResponse, PreferReturn } from '../fhir/fhir-request';
import { routes } from '../fhir/routes';
import { isResourceType } from '../validation/structure-definitions';
import { readBody } from './read-body';
import { writeResource } from './write-response';

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** Mounts the FHIR route table under /fhir: the only place where Koa meets FHIR handlers. */
export function fhirRouter(fhir: FhirContext): Middleware {
  const router = new Router({ prefix: '/fhir' });
  for (const route of routes) {
    router.register(route.path, [route.method], async (ctx: Context, next: () => Promise<unknown>) => {
      const params = ctx.params as Record<string, string | undefined>;
      if (params.resourceType !== undefined && !isResourceType(params.resourceType)) {
        // `metadata` or `Nonsense` in a type position: let a literal route or the 404/405 below answer.
        return next();
      }
      const parsed = BODY_METHODS.has(ctx.method)
        ? await readBody(ctx, fhir.config.maxBodyBytes, { form: route.path.endsWith('/_search') })
        : {};
      const req: FhirRequest = {
        method: ctx.method,
        resourceType: params.resourceType,
        id: params.id,
        versionId: params.versionId,
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
      respond(ctx, req, await route.handler(req, fhir));
    });
  }
  const mounted = router.routes();
  return async (ctx, next) => {
    if (ctx.path !== '/fhir' && !ctx.path.startsWith('/fhir/')) {
      return next();
    }
    await mounted(ctx as Parameters<typeof mounted>[0], async () => {
      // Nothing answered: 405 when the path exists for another method, else 404.
      const allowed = new Set<string>();
      let unknownType: string | undefined;
      for (const layer of router.match(ctx.path, ctx.method).path) {
        const type = layer.params(ctx.path, layer.captures(ctx.path)).resourceType;
        if (type === undefined || isResourceType(type)) {
          layer.methods.forEach((m) => allowed.add(m));
        } else {
          unknownType = type;
        }
      }
      if (allowed.size > 0) {
        ctx.set('Allow', [...allowed].join(', '));
        throw methodNotAllowed(`${ctx.method} is not allowed on ${ctx.path}; allowed: ${[...allowed].join(', ')}`);
      }
      throw notFound(unknownType ? `Unknown resource type "${unknownType}"` : `No FHIR endpoint at ${ctx.method} ${ctx.path}`);
    });
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
  if (res.honoursPreferReturn && req.preferReturn === 'minimal') {
    ctx.body = null;
    ctx.status = res.status;
    return;
  }
  if (res.honoursPreferReturn && req.preferReturn === 'OperationOutcome') {
    writeResource(ctx, informational(`${req.method} succeeded with status ${res.status}`));
    return;
  }
  if (res.resource) {
    writeResource(ctx, res.resource);
  }
}
