import type { AuthContext, AuthRequest, AuthResponse } from './auth-exchange';
import { CLIENT_ASSERTION_ALGS, tokenEndpointUrl } from './client-authentication';
import { PROFILE_CLAIMS } from './profile-claims';
import { healthCardKeyFor } from './health-card-key';
import { SIGNING_ALG, signingKeysFor } from './signing-keys';
import { oauthEndpoints } from './oauth-endpoints';
import { GRANT_TYPES } from './token-endpoint';

/** Discovery documents change only with a deployment; clients may cache them briefly. */
const CACHEABLE = { 'Cache-Control': 'public, max-age=300' };

export const SCOPES_SUPPORTED = [
  'openid',
  'fhirUser',
  'profile',
  'launch',
  'launch/patient',
  'launch/encounter',
  'offline_access',
  'online_access',
  ...['patient', 'user', 'system'].flatMap((context) => ['cruds', 'rs', 'read', 'write', '*'].map((p) => `${context}/*.${p}`)),
];

/** What works, and nothing else (SMART App Launch §"Capability Sets"); /auth/authorize takes GET and POST. */
const CAPABILITIES = [
  'authorize-post',
  'launch-ehr',
  'launch-standalone',
  'client-public',
  'client-confidential-symmetric',
  'client-confidential-asymmetric',
  'sso-openid-connect',
  'context-passthrough-banner',
  'context-passthrough-style',
  'context-ehr-patient',
  'context-ehr-encounter',
  'context-standalone-patient',
  'context-standalone-encounter',
  'permission-offline',
  'permission-online',
  'permission-patient',
  'permission-user',
  'permission-v1',
  'permission-v2',
  // SMART Health Cards: Patient/[id]/$health-cards-issue (operations/health-cards-issue.ts).
  'health-cards',
];

/** GET /.well-known/smart-configuration and /fhir/.well-known/smart-configuration (SMART App Launch §"Conformance"). */
export async function smartConfiguration(_req: AuthRequest, context: AuthContext): Promise<AuthResponse> {
  const endpoints = oauthEndpoints(context.issuer);
  return {
    status: 200,
    headers: CACHEABLE,
    json: {
      issuer: context.issuer,
      jwks_uri: endpoints.jwks,
      authorization_endpoint: endpoints.authorize,
      token_endpoint: tokenEndpointUrl(context),
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGS,
      grant_types_supported: GRANT_TYPES,
      scopes_supported: SCOPES_SUPPORTED,
      response_types_supported: ['code'],
      introspection_endpoint: endpoints.introspect,
      revocation_endpoint: endpoints.revoke,
      code_challenge_methods_supported: ['S256'],
      capabilities: CAPABILITIES,
    },
  };
}

/** GET /.well-known/openid-configuration (OpenID Connect Discovery 1.0 §3). */
export async function openidConfiguration(_req: AuthRequest, context: AuthContext): Promise<AuthResponse> {
  const endpoints = oauthEndpoints(context.issuer);
  return {
    status: 200,
    headers: CACHEABLE,
    json: {
      issuer: context.issuer,
      authorization_endpoint: endpoints.authorize,
      token_endpoint: endpoints.token,
      jwks_uri: endpoints.jwks,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: [SIGNING_ALG],
      scopes_supported: SCOPES_SUPPORTED,
      claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'nonce', 'fhirUser', ...PROFILE_CLAIMS],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGS,
      grant_types_supported: GRANT_TYPES,
      code_challenge_methods_supported: ['S256'],
    },
  };
}

/**
 * GET /auth/jwks: the public halves of the unretired token signing keys (kid, alg, use sig).
 * The health card issuer key is not among them (it is at /.well-known/jwks.json): a
 * resource server that does not pin `alg` must not take a card key for a token key.
 */
export async function jwks(_req: AuthRequest, context: AuthContext): Promise<AuthResponse> {
  // Short: a verifier that sees an unknown kid refetches anyway, and rotation must reach it.
  return { status: 200, json: await signingKeysFor(context).publicJwks(), headers: { 'Cache-Control': 'public, max-age=60' } };
}

/**
 * GET /.well-known/jwks.json: the SMART Health Card issuer keys, where verifiers look
 * for them (`iss` + this path). Verifier apps run in browsers anywhere, so any origin
 * may read it, whatever CORS_ORIGINS says (https://spec.smarthealth.cards/#determining-keys-associated-with-an-issuer).
 */
export async function healthCardJwks(_req: AuthRequest, context: AuthContext): Promise<AuthResponse> {
  return {
    status: 200,
    json: await healthCardKeyFor(context.knex).publicJwks(),
    // Ten minutes: each key's crlVersion tells verifiers when its revocation list changed.
    headers: { 'Cache-Control': 'public, max-age=600', 'Access-Control-Allow-Origin': '*' },
  };
}

/** GET /auth/smart-style.json: the smart_style_url of launches (SMART App Launch §"Styling"). */
export async function smartStyle(): Promise<AuthResponse> {
  return {
    status: 200,
    headers: CACHEABLE,
    json: {
      color_background: '#ffffff',
      color_error: '#b00020',
      color_highlight: '#1f5fa8',
      color_modal_backdrop: '',
      color_success: '#2e7d32',
      color_text: '#1a1a1a',
      dim_border_radius: '4px',
      dim_font_size: '16px',
      dim_spacing_size: '16px',
      font_family_body: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
      font_family_heading: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
    },
  };
}
