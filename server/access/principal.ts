/**
 * Who is asking, as the bearer token says: the client, the user (if any) and the
 * access granted. Built by the token verifier, read by access checks; never by route
 * handlers directly.
 */
export interface Principal {
  /** The access token's `jti`. */
  tokenId: string;
  clientId: string;
  /** The auth_user id when a user authorized the token (authorization_code, refresh). */
  userId?: string;
  /** `Patient/123` or `Practitioner/456`: the user's FHIR resource. */
  fhirUser?: string;
  /** The user's role (admin, practitioner, nurse, patient, ...). */
  role?: string;
  /** The granted scopes, space-separated, exactly as in the token. */
  scope: string;
  /** Launch context: the patient id that `patient/` scopes confine to. */
  patient?: string;
  encounter?: string;
  /** Epoch seconds. */
  expiresAt: number;
}
