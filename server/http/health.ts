import type { Middleware } from 'koa';

/** /healthz: the process answers. /readyz: and its database does too. */
export function health(isReady: () => Promise<boolean>): Middleware {
  return async (ctx, next) => {
    if (ctx.path === '/healthz') {
      ctx.body = { status: 'ok' };
      return;
    }
    if (ctx.path === '/readyz') {
      const ready = await isReady();
      ctx.status = ready ? 200 : 503;
      ctx.body = { status: ready ? 'ready' : 'database unreachable' };
      return;
    }
    await next();
  };
}
