import type { Middleware } from 'koa';
import { issue, isOperationOutcomeError, outcome } from '../core/outcome';
import { writeResource } from './write-response';

/**
 * Turns every error into an OperationOutcome response. Our own errors carry their
 * status; HTTP errors from libraries (raw-body's 413, ...) keep theirs when they are
 * client errors; anything else is a 500 whose details stay in the log, the client
 * getting only the request id to quote.
 */
export function errorOutcome(): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (isOperationOutcomeError(err)) {
        ctx.status = err.status;
        for (const [name, value] of Object.entries(err.headers ?? {})) ctx.set(name, value);
        writeResource(ctx, err.outcome);
        return;
      }
      const status = httpStatus(err);
      if (status >= 400 && status < 500) {
        ctx.status = status;
        writeResource(ctx, outcome([issue('error', codeFor(status), clientMessage(err, status))]));
        return;
      }
      ctx.state.log.error({ err }, 'unhandled error');
      ctx.status = 500;
      writeResource(
        ctx,
        outcome([issue('fatal', 'exception', `Internal server error (request id ${ctx.state.requestId})`)])
      );
    }
  };
}

function httpStatus(err: unknown): number {
  if (typeof err === 'object' && err !== null) {
    const e = err as { status?: unknown; statusCode?: unknown };
    const s = Number(e.status ?? e.statusCode);
    if (Number.isInteger(s)) {
      return s;
    }
  }
  return 500;
}

function clientMessage(err: unknown, status: number): string {
  const e = err as { expose?: boolean; message?: string; type?: string };
  if (e.type === 'entity.too.large') {
    return 'The request body is larger than this server accepts';
  }
  return e.expose && e.message ? e.message : `HTTP ${status}`;
}

function codeFor(status: number): 'too-costly' | 'not-found' | 'not-supported' | 'invalid' | 'security' {
  if (status === 413) return 'too-costly';
  if (status === 404) return 'not-found';
  if (status === 405 || status === 415 || status === 406) return 'not-supported';
  if (status === 401 || status === 403) return 'security';
  return 'invalid';
}
