/**
 * The URLs of the authorization server's endpoints, for discovery and for the
 * CapabilityStatement's oauth-uris extension (fhir/capabilities.ts): imports nothing, so
 * the FHIR layer can name them without loading the authorization server.
 */
export function oauthEndpoints(issuer: string) {
  return {
    authorize: `${issuer}/auth/authorize`,
    token: `${issuer}/auth/token`,
    introspect: `${issuer}/auth/introspect`,
    revoke: `${issuer}/auth/revoke`,
    jwks: `${issuer}/auth/jwks`,
  };
}
