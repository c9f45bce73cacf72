import { invalidRequest, type AuthContext, type AuthRequest, type AuthResponse } from './auth-exchange';
import { verifiedAccessTokenClaims } from './access-token';
import { authenticateClient } from './client-authentication';
import { findRefreshToken, revokeRefreshFamily } from './refresh-family';
import { revokedTokensFor } from './revoked-tokens';
import { hashToken } from './secret-hash';
import { NO_STORE } from './token-response';

/**
 * POST /auth/revoke (RFC 7009). The client authenticates as at the token endpoint (a
 * public client by its client_id). A refresh token revokes its whole family; an access
 * token is listed in auth_revoked_token until its exp, which every process's verifier
 * reads. A token that is unknown, invalid, expired or another client's is answered 200
 * all the same (§2.2): the caller learns nothing about it and nothing changes.
 */
export async function revoke(req: AuthRequest, context: AuthContext): Promise<AuthResponse> {
  const { client } = await authenticateClient(req, context);
  const token = req.form.token;
  if (!token) throw invalidRequest('token is required');
  if (token.includes('.')) {
    const claims = await verifiedAccessTokenClaims(context, token);
    if (claims && claims.client_id === client.id) await revokedTokensFor(context).revoke(claims.jti as string, claims.exp as number);
  } else {
    const row = await findRefreshToken(context.knex, hashToken(token));
    if (row && row.client_id === client.id) await revokeRefreshFamily(context, row.family_id);
  }
  return { status: 200, json: {}, headers: NO_STORE };
}
