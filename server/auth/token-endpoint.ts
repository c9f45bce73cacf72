import { OAuthError, invalidRequest, type AuthContext, type AuthRequest, type AuthResponse } from './auth-exchange';
import { authenticateClient, type AuthenticatedClient } from './client-authentication';
import { purgeExpiredGrants } from './expired-grant-purge';
import { authorizationCodeGrant } from './grant-authorization-code';
import { clientCredentialsGrant } from './grant-client-credentials';
import { refreshTokenGrant } from './grant-refresh-token';

type GrantHandler = (req: AuthRequest, context: AuthContext, client: AuthenticatedClient) => Promise<AuthResponse>;

const GRANTS: Record<string, GrantHandler> = {
  authorization_code: authorizationCodeGrant,
  refresh_token: refreshTokenGrant,
  client_credentials: clientCredentialsGrant,
};

export const GRANT_TYPES = Object.keys(GRANTS);

/** POST /auth/token (RFC 6749 §3.2): authenticate the client, then the grant's own checks. */
export async function tokenEndpoint(req: AuthRequest, context: AuthContext): Promise<AuthResponse> {
  const grantType = req.form.grant_type;
  if (!grantType) throw invalidRequest('grant_type is required');
  const grant = Object.hasOwn(GRANTS, grantType) ? GRANTS[grantType] : undefined;
  if (!grant) throw new OAuthError(400, 'unsupported_grant_type', `grant_type ${grantType} is not supported`);
  const response = await grant(req, context, await authenticateClient(req, context));
  await purgeExpiredGrants(context.knex);
  return response;
}
