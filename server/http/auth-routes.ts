import type { Context, Middleware } from 'koa';
import getRawBody from 'raw-body';
import { parse as parseContentType } from 'content-type';
import { OAuthError, type AuthContext, type AuthRequest, type AuthResponse, type AuthRoute, type BearerVerifier } from '../auth/auth-exchange';
import type { AuditRecorder } from '../audit/audit-recorder';
import { loginAuditEvent, tokenAuditEvent } from '../audit/audit-event';
import { bearerToken } from './bearer-auth';
import { formHoldsNul, jsonHoldsNul, NUL_REFUSAL, urlHoldsNul } from './nul-characters';

const MAX_FORM_BYTES = 64 * 1024;

/**
 * Mounts the authorization server's routes (auth/): the only place where Koa meets
 * them. Builds a plain AuthRequest, renders the AuthResponse, and turns an OAuthError
 * into RFC 6749's JSON error with Cache-Control: no-store.
 */
export function authRoutes(routes: readonly AuthRoute[], auth: AuthContext, verify: BearerVerifier, audit?: AuditRecorder): Middleware {
  const table = new Map(routes.map((r) => [`${r.method} ${r.path}`, r]));
  const paths = new Set(routes.map((r) => r.path));
  return async (ctx, next) => {
    if (!paths.has(ctx.path)) return next();
    const route = table.get(`${ctx.method} ${ctx.path}`);
    if (!route) {
      if (ctx.method === 'OPTIONS') return next();
      ctx.status = 405;
      ctx.set('Allow', routes.filter((r) => r.path === ctx.path).map((r) => r.method).join(', '));
      ctx.body = { error: 'invalid_request', error_description: `${ctx.method} is not allowed on ${ctx.path}` };
      return;
    }
    let req: AuthRequest | undefined;
    try {
      req = await authRequest(ctx, route, verify);
      const res = await route.handler(req, auth);
      if (audit) await auditAuth(audit, req, res.status, res);
      render(ctx, res, auth);
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      if (audit && req) await auditAuth(audit, req, err.status, undefined, `${err.error}: ${err.description ?? ''}`);
      ctx.status = err.status;
      ctx.set('Cache-Control', 'no-store');
      for (const [name, value] of Object.entries(err.headers)) ctx.set(name, value);
      ctx.body = { error: err.error, error_description: err.description };
    }
  };
}

async function authRequest(ctx: Context, route: AuthRoute, verify: BearerVerifier): Promise<AuthRequest> {
  if (urlHoldsNul(ctx.url)) throw new OAuthError(400, 'invalid_request', NUL_REFUSAL);
  const form: Record<string, string | undefined> = {};
  let json: unknown;
  if (ctx.method === 'POST' && ctx.get('Content-Length') !== '0') {
    let mediaType = '';
    try {
      mediaType = parseContentType(ctx.get('Content-Type')).type;
    } catch {
      // No or malformed Content-Type: treated as an empty body below.
    }
    const text = await getRawBody(ctx.req, { limit: MAX_FORM_BYTES, encoding: 'utf-8' });
    if (mediaType === 'application/x-www-form-urlencoded') {
      const params = new URLSearchParams(text);
      if (formHoldsNul(params)) throw new OAuthError(400, 'invalid_request', NUL_REFUSAL);
      for (const [name, value] of params) {
        // RFC 6749 §3.1: request and response parameters MUST NOT be included more than once.
        if (name in form) throw new OAuthError(400, 'invalid_request', `Parameter ${name} is repeated`);
        form[name] = value;
      }
    } else if (mediaType === 'application/json' && text.trim() !== '') {
      try {
        json = JSON.parse(text);
      } catch {
        throw new OAuthError(400, 'invalid_request', 'The body is not valid JSON');
      }
      if (jsonHoldsNul(text)) throw new OAuthError(400, 'invalid_request', NUL_REFUSAL);
    }
  }
  const query: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(ctx.query)) query[name] = Array.isArray(value) ? value[0] : value;
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(ctx.headers)) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  const cookies: Record<string, string | undefined> = {};
  for (const part of (ctx.get('Cookie') || '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) cookies[part.slice(0, eq).trim()] = decodeURIComponent(part.slice(eq + 1).trim());
  }
  const token = bearerToken(ctx.get('Authorization'));
  const principal = token ? await verify(token) : undefined;
  return { method: route.method, path: ctx.path, query, form, json, headers, cookies, ip: ctx.ip, origin: `${ctx.protocol}://${ctx.host}`, principal };
}

function render(ctx: Context, res: AuthResponse, auth: AuthContext): void {
  const secure = auth.issuer.startsWith('https:');
  for (const cookie of res.cookies ?? []) {
    ctx.cookies.set(cookie.name, cookie.value, {
      httpOnly: true,
      sameSite: 'lax',
      secure,
      path: '/auth',
      maxAge: cookie.maxAgeSeconds * 1000,
      overwrite: true,
    });
  }
  for (const [name, value] of Object.entries(res.headers ?? {})) ctx.set(name, value);
  ctx.status = res.status;
  if (res.redirect !== undefined) {
    ctx.set('Location', res.redirect);
    ctx.body = null;
    ctx.status = res.status;
  } else if (res.html !== undefined) {
    ctx.type = 'text/html; charset=utf-8';
    // Pages carry no external assets and no scripts: nothing else may load or frame them.
    const formAction = ["'self'", ...(res.formTargets ?? []).map(cspSource).filter((s) => s !== undefined)].join(' ');
    ctx.set('Content-Security-Policy', `default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`);
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = res.html;
  } else if (res.json !== undefined) {
    ctx.type = 'application/json';
    ctx.body = res.json;
  }
}

/** A URL as a CSP source expression: its origin, or its scheme for an app's private-use scheme (com.example.app:/cb). */
function cspSource(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  // Serialized origins and schemes hold no spaces, quotes, commas or semicolons: nothing here can end the directive.
  return parsed.origin !== 'null' ? parsed.origin : parsed.protocol;
}

/** The login page's refusal text (auth/login.ts): a page that shows it is a failed login. */
const LOGIN_REFUSED_MARK = 'is not correct, or the account is locked';

/**
 * Token issue / refusal and login success / failure as AuditEvents (docs/audit.md),
 * committed before the answer is sent. Other auth routes are not audited.
 */
async function auditAuth(audit: AuditRecorder, req: AuthRequest, status: number, res?: AuthResponse, error?: string): Promise<void> {
  if (req.path === '/auth/token') {
    const basic = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '');
    const basicId = basic ? decodeURIComponent(Buffer.from(basic[1], 'base64').toString('utf8').split(':')[0]) : undefined;
    const issued = res !== undefined && status === 200;
    const scope = issued ? (res.json as { scope?: string } | undefined)?.scope : undefined;
    await audit.record([
      tokenAuditEvent(
        {
          clientId: req.form.client_id ?? basicId ?? (req.form.client_assertion ? assertionIssuer(req.form.client_assertion) : undefined),
          grantType: req.form.grant_type,
          success: issued,
          status,
          sourceAddress: req.ip,
          description: issued ? 'access token issued' : `token refused (${status}) ${error ?? ''}`.trim(),
          scope,
        },
        audit.observer
      ),
    ]);
  } else if (req.method === 'POST' && (req.path === '/auth/login' || req.path === '/auth/login/totp')) {
    const success = res?.redirect !== undefined;
    const failure = res?.html?.includes(LOGIN_REFUSED_MARK) ?? true;
    // The TOTP prompt after a right password is neither: the login completes on the next step.
    if (!success && !failure) return;
    await audit.record([
      loginAuditEvent(
        {
          username: req.form.username ?? '(totp step)',
          success,
          sourceAddress: req.ip,
          description: success ? `login succeeded (${req.path})` : `login refused (${req.path})`,
        },
        audit.observer
      ),
    ]);
  }
}

/** The `iss` of a client assertion JWT (the client id), unverified: only for the record. */
function assertionIssuer(jwt: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss?: unknown };
    return typeof payload.iss === 'string' ? payload.iss : undefined;
  } catch {
    return undefined;
  }
}
