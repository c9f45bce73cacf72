import { issueAccessToken, type AccessTokenClaims } from '../../server/auth/access-token';
import type { AuthContext } from '../../server/auth/auth-exchange';
import { loadConfig } from '../../server/config';
import { createKnex } from '../../server/storage/database';
import type { Repository } from '../../server/storage/repository';
import type { ServerProcess } from './server-process';

/**
 * An access token as the benchmark server's token endpoint would issue it, signed with
 * its keys (they live in its database). The server process runs without PUBLIC_URL:
 * its issuer is http://localhost:PORT.
 */
export async function benchToken(server: ServerProcess, databaseUrl: string, claims: AccessTokenClaims): Promise<string> {
  const knex = createKnex(databaseUrl, 1);
  try {
    const issuer = `http://localhost:${new URL(server.url).port}`;
    const context: AuthContext = { knex, config: loadConfig({ PUBLIC_URL: issuer }), repo: undefined as unknown as Repository, issuer, fhirBase: `${issuer}/fhir` };
    return (await issueAccessToken(context, claims)).token;
  } finally {
    await knex.destroy();
  }
}
