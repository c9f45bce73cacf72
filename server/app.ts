import Koa from 'koa';
import type { Logger } from 'pino';
import type { Config } from './config';
import type { Repository } from './storage/repository';
import { errorOutcome } from './http/error-outcome';
import { compileRoutes } from './fhir/route-matcher';
import { routes } from './fhir/routes';
import { fhirRouter } from './http/fhir-router';
import { health } from './http/health';
import { negotiation } from './http/negotiation';
import { requestContext } from './http/request-context';

export interface AppDependencies {
  config: Config;
  repo: Repository;
  logger: Logger;
}

/** Composes the middleware and routes; no I/O happens here. */
export function createApp({ config, repo, logger }: AppDependencies): Koa {
  const app = new Koa();
  app.proxy = true;
  app.silent = true;
  app.use(requestContext(logger));
  app.use(health(() => repo.isReachable()));
  app.use(errorOutcome());
  app.use(negotiation());
  app.use(fhirRouter({ repo, config, baseUrl: `${config.publicUrl}/fhir`, findRoute: compileRoutes(routes), log: logger }));
  return app;
}
