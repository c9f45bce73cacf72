import type { Middleware } from 'koa';
import helmet from 'koa-helmet';

/**
 * Security headers (helmet) for a JSON API that also serves a few server-rendered pages:
 *
 * - a CSP for API responses that allows nothing (`default-src 'none'; frame-ancestors
 *   'none'`): JSON needs no scripts, styles or frames. The login, consent and picker pages
 *   replace it with their own (http/auth-routes.ts sets it after this middleware ran);
 * - X-Frame-Options DENY, X-Content-Type-Options nosniff, Referrer-Policy no-referrer;
 * - HSTS only when the public URL is https (over plain http it would be ignored, and on
 *   localhost it would pin the browser to https for every port);
 * - Cross-Origin-Resource-Policy `cross-origin`: SMART apps in browsers fetch the FHIR API,
 *   the token endpoint and the JWKS from their own origins (CORS decides who reads them);
 * - no Cross-Origin-Opener-Policy: an app that opens the authorization page in a popup
 *   needs `window.opener` once the popup is back on the app's origin.
 */
export function securityHeaders(publicUrl: string): Middleware {
  const https = new URL(publicUrl).protocol === 'https:';
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
    },
    crossOriginResourcePolicy: { policy: 'cross-origin' },
    crossOriginOpenerPolicy: false,
    crossOriginEmbedderPolicy: false,
    referrerPolicy: { policy: 'no-referrer' },
    xFrameOptions: { action: 'deny' },
    strictTransportSecurity: https ? { maxAge: 365 * 86400, includeSubDomains: true } : false,
  });
}
