import type { Knex } from 'knex';
import type { Middleware } from 'koa';
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

declare module 'koa' {
  interface DefaultState {
    /** The FHIR route that served the request (`/:resourceType/:id`), a label of bounded cardinality. */
    routePath?: string;
  }
}

/** Paths outside the FHIR API that are worth a label of their own; any other is `other`. */
const NAMED_PATHS = /^\/(healthz|readyz|metrics|auth\/[a-z/-]+|\.well-known\/[a-z-]+)$/;

/**
 * Prometheus metrics at GET /metrics (text exposition format, prom-client): the process's
 * own (CPU, memory, event loop lag, GC), request durations by method, route and status,
 * and the database pool. One registry per app, so several servers in one process (the
 * tests) do not share counters.
 */
export function metrics(knex: Knex, audit?: { journalBacklog(): number }): Middleware {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const duration = new Histogram({
    name: 'fhir_http_request_duration_seconds',
    help: 'HTTP requests by method, route (the FHIR route pattern, or the path outside /fhir) and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  const pool = (knex.client as { pool?: { numUsed(): number; numFree(): number; numPendingAcquires(): number } }).pool;
  new Gauge({
    name: 'fhir_db_pool_connections',
    help: 'Database pool connections by state (used, free, pending acquires)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      if (!pool) return;
      this.set({ state: 'used' }, pool.numUsed());
      this.set({ state: 'free' }, pool.numFree());
      this.set({ state: 'pending' }, pool.numPendingAcquires());
    },
  });
  if (audit) {
    new Gauge({
      name: 'fhir_audit_journal_events',
      help: "Reads' AuditEvents in this process's audit journal not yet stored in PostgreSQL (docs/audit.md)",
      registers: [registry],
      collect() {
        this.set(audit.journalBacklog());
      },
    });
  }
  return async (ctx, next) => {
    if (ctx.path === '/metrics' && ctx.method === 'GET') {
      ctx.type = registry.contentType;
      ctx.body = await registry.metrics();
      return;
    }
    const stop = duration.startTimer();
    try {
      await next();
    } finally {
      const route = ctx.state.routePath ? `/fhir${ctx.state.routePath}` : NAMED_PATHS.test(ctx.path) ? ctx.path : 'other';
      stop({ method: ctx.method, route, status: String(ctx.status) });
    }
  };
}
