import { issueAccessToken, type AccessTokenClaims } from '../../server/auth/access-token';
import type { AuthContext } from '../../server/auth/auth-exchange';
import { loadConfig } from '../../server/config';
import type { Repository } from '../../server/storage/repository';
import type { TestServer } from './test-server';

const contexts = new WeakMap<TestServer, AuthContext>();

/**
 * An access token signed by the test server's own keys (they live in its database), as
 * its token endpoint would issue it: for tests of what a token may do, without going
 * through a grant each time.
 */
export async function mintToken(server: TestServer, claims: Partial<AccessTokenClaims> & { scope: string }): Promise<string> {
  let context = contexts.get(server);
  if (!context) {
    context = {
      knex: server.server.knex,
      config: loadConfig({ PUBLIC_URL: server.url }),
      repo: undefined as unknown as Repository,
      issuer: server.url,
      fhirBase: server.base,
    };
    contexts.set(server, context);
  }
  const { token } = await issueAccessToken(context, { clientId: 'test-client', ...claims });
  return token;
}
