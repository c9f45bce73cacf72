import type { Middleware } from 'koa';
import type { Principal } from '../access/principal';
import type { BearerVerifier } from '../auth/auth-exchange';
import { unauthorized } from '../core/outcome';

declare module 'koa' {
  interface DefaultState {
    /** Set when the request carries a valid bearer token. */
    principal?: Principal;
  }
}

export function bearerToken(header: string): string | undefined {
  const match = /^Bearer\s+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header);
  return match?.[1];
}

/** Open without a token: what a client needs to discover how to get one. */
function isPublicFhirPath(path: string): boolean {
  return path === '/fhir/metadata' || path.startsWith('/fhir/.well-known/');
}

/**
 * RFC 6750 on the FHIR API: a valid bearer token becomes `ctx.state.principal`; a bad
 * token is always 401; no token is 401 when `required`, and otherwise (development)
 * leaves the request unrestricted.
 */
export function bearerAuth(verify: BearerVerifier, required: boolean, realm: string): Middleware {
  return async (ctx, next) => {
    if ((ctx.path !== '/fhir' && !ctx.path.startsWith('/fhir/')) || isPublicFhirPath(ctx.path) || ctx.method === 'OPTIONS') {
      return next();
    }
    const header = ctx.get('Authorization');
    if (header === '') {
      if (required) throw unauthorized('This server requires a bearer access token (SMART on FHIR)', `Bearer realm="${realm}"`);
      return next();
    }
    const token = bearerToken(header);
    const principal = token ? await verify(token) : undefined;
    if (!principal) {
      throw unauthorized(
        'The access token is missing, malformed, expired, revoked or not signed by this server',
        `Bearer realm="${realm}", error="invalid_token", error_description="The access token is invalid or expired"`
      );
    }
    ctx.state.principal = principal;
    return next();
  };
}
