import { grantableScopes, splitScopes } from '../access/scopes';
import { invalidScope, unauthorizedClient, type AuthContext, type AuthRequest, type AuthResponse } from './auth-exchange';
import type { AuthenticatedClient } from './client-authentication';
import { tokenResponse } from './token-response';

/**
 * client_credentials (RFC 6749 §4.4, SMART Backend Services): a confidential client acts
 * for itself, so only system/ scopes apply. The scope parameter is required (SMART
 * Backend Services §"Request"); what it asks is narrowed to what the client is
 * registered for, and nothing grantable is invalid_scope. No refresh token: the client
 * can always authenticate again.
 */
export async function clientCredentialsGrant(req: AuthRequest, context: AuthContext, { client, method }: AuthenticatedClient): Promise<AuthResponse> {
  if (method === 'none') throw unauthorizedClient('client_credentials is for confidential clients');
  const requested = splitScopes(req.form.scope);
  if (requested.length === 0) throw invalidScope('scope is required (e.g. system/*.rs)');
  const scope = grantableScopes(requested, splitScopes(client.scope)).filter((s) => s.startsWith('system/'));
  if (scope.length === 0) throw invalidScope('None of the requested scopes is a system scope this client is registered for');
  return tokenResponse(context, { clientId: client.id, scope: scope.join(' ') });
}
