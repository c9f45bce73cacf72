import type { AuthRoute } from './auth-exchange';
import { healthCardJwks, jwks, openidConfiguration, smartConfiguration, smartStyle } from './discovery';
import { introspect } from './introspect';
import { revoke } from './revoke';
import { tokenEndpoint } from './token-endpoint';

/** The token side of the authorization server: discovery, keys, token, introspection, revocation. */
export function tokenRoutes(): AuthRoute[] {
  return [
    { method: 'GET', path: '/.well-known/smart-configuration', handler: smartConfiguration, cors: true },
    { method: 'GET', path: '/fhir/.well-known/smart-configuration', handler: smartConfiguration, cors: true },
    { method: 'GET', path: '/.well-known/openid-configuration', handler: openidConfiguration, cors: true },
    { method: 'GET', path: '/auth/jwks', handler: jwks, cors: true },
    { method: 'GET', path: '/.well-known/jwks.json', handler: healthCardJwks, cors: true },
    { method: 'GET', path: '/auth/smart-style.json', handler: smartStyle, cors: true },
    { method: 'POST', path: '/auth/token', handler: tokenEndpoint, cors: true },
    { method: 'POST', path: '/auth/introspect', handler: introspect, cors: true },
    { method: 'POST', path: '/auth/revoke', handler: revoke, cors: true },
  ];
}
