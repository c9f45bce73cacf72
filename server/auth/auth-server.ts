import { accessTokenVerifier } from './access-token';
import type { AuthContext, AuthRoute, BearerVerifier } from './auth-exchange';
import { loginRoutes } from './login-routes';
import { tokenRoutes } from './token-routes';

/** The SMART / OAuth 2 authorization server: its HTTP routes and the verifier of the tokens it issues. */
export interface AuthServer {
  context: AuthContext;
  routes: AuthRoute[];
  verify: BearerVerifier;
}

export function createAuthServer(context: AuthContext): AuthServer {
  return { context, routes: [...tokenRoutes(), ...loginRoutes()], verify: accessTokenVerifier(context) };
}
