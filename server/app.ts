import Koa from 'koa';
import cors from '@koa/cors';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Config } from './config';
import type { Repository } from './storage/repository';
import type { AuditRecorder } from './audit/audit-recorder';
import { refuseAuditEventChanges } from './audit/audited-handler';
import { createAuthServer } from './auth/auth-server';
import type { BearerVerifier } from './auth/auth-exchange';
import type { ConsentWatch } from './access/consent-watch';
import { healthCardKeyFor } from './auth/health-card-key';
import { healthCardCrl } from './http/health-card-crl';
import { ExportJobStore } from './storage/export-jobs';
import { authRoutes } from './http/auth-routes';
import { auditRefusals } from './http/audit-refusals';
import { bearerAuth } from './http/bearer-auth';
import { errorOutcome } from './http/error-outcome';
import { compileRoutes } from './fhir/route-matcher';
import { routes } from './fhir/routes';
import { fhirRouter } from './http/fhir-router';
import { refuseNulInUrl } from './http/nul-characters';
import { health } from './http/health';
import { metrics } from './http/metrics';
import { negotiation } from './http/negotiation';
import { requestContext } from './http/request-context';
import type { RateLimits } from './http/rate-limit';
import { securityHeaders } from './http/security-headers';

export interface AppDependencies {
  config: Config;
  repo: Repository;
  knex: Knex;
  logger: Logger;
  /** Records an AuditEvent per FHIR interaction and auth event (docs/audit.md); none without it. */
  audit?: AuditRecorder;
  /** Lets Consent rules be reused until a Consent changes; without it they are read per request. */
  consentWatch?: ConsentWatch;
  /** Request rate limits; the caller closes them (their Redis connection) when it stops. */
  limits: RateLimits;
}

/** Composes the middleware and routes; no I/O happens here. `verify` checks bearer tokens, for what is served beside the app (websocket Subscriptions). */
export function createApp({ config, repo, knex, logger, audit, consentWatch, limits }: AppDependencies): { app: Koa; verify: BearerVerifier } {
  const app = new Koa();
  app.proxy = true;
  app.silent = true;
  const fhirBase = `${config.publicUrl}/fhir`;
  const auth = createAuthServer({ knex, config, repo, issuer: config.publicUrl, fhirBase });
  app.use(requestContext(logger));
  app.use(securityHeaders(config.publicUrl));
  app.use(health(() => repo.isReachable()));
  if (config.metrics) app.use(metrics(knex, audit));
  app.use(corsForBrowserApps(config.auth.corsOrigins, new Set(auth.routes.filter((r) => r.cors).map((r) => r.path))));
  app.use(errorOutcome());
  app.use(limits.byAddress());
  app.use(authRoutes(auth.routes, auth.context, auth.verify, audit));
  app.use(healthCardCrl(knex));
  const findRoute = refuseAuditEventChanges(compileRoutes(routes));
  if (audit) app.use(auditRefusals(audit, findRoute));
  app.use(refuseNulInUrl());
  app.use(bearerAuth(auth.verify, config.auth.required, fhirBase));
  app.use(limits.byClient());
  app.use(negotiation());
  app.use(fhirRouter({ repo, config, baseUrl: fhirBase, findRoute, log: logger, healthCardKey: healthCardKeyFor(knex), exportJobs: new ExportJobStore(knex) }, audit, consentWatch));
  return { app, verify: auth.verify };
}

/**
 * SMART apps in browsers call discovery, token and the FHIR API from their own origin
 * (SMART App Launch §"Considerations for browser apps"). The login and consent pages are
 * not called cross-origin: a browser navigates to them.
 */
function corsForBrowserApps(origins: string[], authCorsPaths: ReadonlySet<string>): Koa.Middleware {
  const any = origins.includes('*');
  return cors({
    origin: (ctx) => {
      const origin = ctx.get('Origin');
      // Of the authorization server, only the routes marked `cors` (token, JWKS, style, discovery …).
      if (ctx.path.startsWith('/auth/') && !authCorsPaths.has(ctx.path)) return '';
      return any || origins.includes(origin) ? origin : '';
    },
    allowHeaders: ['Authorization', 'Content-Type', 'Accept', 'Prefer', 'If-Match', 'If-None-Match', 'If-None-Exist', 'If-Modified-Since', 'X-Request-Id', 'X-Purpose-Of-Use', 'X-Security-Context'],
    exposeHeaders: ['Location', 'ETag', 'Last-Modified', 'Content-Location', 'X-Security-Context', 'X-Request-Id', 'WWW-Authenticate', 'Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'],
    allowMethods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    maxAge: 600,
  });
}
