import type { Knex } from 'knex';
import type { Middleware } from 'koa';
import { revocationList } from '../auth/health-card-revocation';

const CRL_PATH = /^\/\.well-known\/crl\/([A-Za-z0-9_-]{1,128})\.json$/;

/**
 * `GET /.well-known/crl/<kid>.json`: the Card Revocation List of a SMART Health Card
 * issuer key (auth/health-card-revocation.ts), where verifiers fetch it when the key's
 * `crlVersion` in /.well-known/jwks.json changed. Open to any origin, as the JWKS is.
 */
export function healthCardCrl(knex: Knex): Middleware {
  return async (ctx, next) => {
    const match = CRL_PATH.exec(ctx.path);
    if (!match || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    const list = await revocationList(knex, match[1]);
    ctx.set('Access-Control-Allow-Origin', '*');
    if (!list) {
      ctx.status = 404;
      ctx.body = { error: 'not_found', error_description: `No issuer key ${match[1]}` };
      return;
    }
    // Short: a revocation should reach verifiers soon; the counter in the JWKS tells them when to look.
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = list;
  };
}
