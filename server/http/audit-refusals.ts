import type { Middleware } from 'koa';
import { interactionKind } from '../audit/audited-handler';
import { interactionAuditEvent, type InteractionKind } from '../audit/audit-event';
import type { AuditRecorder } from '../audit/audit-recorder';
import { isOperationOutcomeError } from '../core/outcome';
import { pathFields, type RouteMatch } from '../fhir/route-matcher';

declare module 'koa' {
  interface DefaultState {
    /** Set by the FHIR router once the request's AuditEvent is in runAudited's hands. */
    audited?: boolean;
  }
}

/** For a request that matched no route, the interaction its method most likely meant. */
const BY_METHOD: Record<string, InteractionKind> = {
  GET: { subtype: 'read', action: 'R' },
  HEAD: { subtype: 'read', action: 'R' },
  POST: { subtype: 'create', action: 'C' },
  PUT: { subtype: 'update', action: 'U' },
  PATCH: { subtype: 'patch', action: 'U' },
  DELETE: { subtype: 'delete', action: 'D' },
};

/**
 * Audits the FHIR requests refused before an interaction ran, which runAudited never
 * sees: no or a bad bearer token (401), a path or method with no route (404, 405), an
 * unreadable body. 429s are left out on purpose: recording every throttled request would
 * let a flood write to the audit log at the rate it is refused.
 */
export function auditRefusals(audit: AuditRecorder, findRoute: (method: string, path: string) => RouteMatch): Middleware {
  return async (ctx, next) => {
    if (ctx.path !== '/fhir' && !ctx.path.startsWith('/fhir/')) return next();
    try {
      await next();
    } catch (err) {
      const status = isOperationOutcomeError(err) ? err.status : 500;
      if (!ctx.state.audited && status !== 429) {
        let found: RouteMatch;
        try {
          found = findRoute(ctx.method, ctx.path.slice('/fhir'.length));
        } catch {
          found = { allowed: [] };
        }
        const fields = found.route ? pathFields(found.route, found.params) : {};
        const kind = found.route ? interactionKind(found.route, { method: ctx.method, queryString: ctx.querystring }) : (BY_METHOD[ctx.method] ?? BY_METHOD.GET);
        const event = interactionAuditEvent(
          {
            kind,
            description: `${ctx.method} ${ctx.path}`,
            resourceType: fields.resourceType,
            id: fields.id,
            versionId: fields.versionId,
            queryString: ctx.querystring,
            status,
            outcomeText: status >= 500 ? 'internal error' : err instanceof Error ? err.message : String(err),
            principal: ctx.state.principal,
            sourceAddress: ctx.ip,
          },
          audit.observer
        );
        // The refusal stands even if its record cannot be written.
        await audit.record([event]).catch((e) => ctx.state.log?.error({ err: e }, 'auditing a refused request failed'));
      }
      throw err;
    }
  };
}
