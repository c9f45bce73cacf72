import pino from 'pino';
import { loadConfig } from '../../server/config';
import { freePort } from '../../server/core/free-port';
import { startServer, type RunningServer } from '../../server/start';
import { copyTemplateDatabase } from './template-database';

export interface TestServer {
  /** e.g. http://127.0.0.1:41234/fhir */
  base: string;
  url: string;
  /** The test's own database, e.g. for a second server process on it. */
  databaseUrl: string;
  server: RunningServer;
  stop(): Promise<void>;
}

/** A real server on a free port with its own database cloned from the migrated template. */
export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const database = await copyTemplateDatabase();
  const { server, base } = await startServerOn(database.url, env);
  return {
    base,
    url: server.url,
    databaseUrl: database.url,
    server,
    stop: async () => {
      await server.stop();
      await database.drop();
    },
  };
}

/**
 * A server (its own pool, jobs and audit journal, as another process would have) on an
 * existing database, e.g. a second one on a test server's `databaseUrl`.
 */
export async function startServerOn(databaseUrl: string, env: Record<string, string> = {}): Promise<{ server: RunningServer; base: string }> {
  const port = await freePort();
  const config = loadConfig({
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    DATABASE_URL: databaseUrl,
    // The interaction tests run without tokens; the auth tests pass AUTH_REQUIRED=true.
    AUTH_REQUIRED: 'false',
    // Rate limits would throttle the suites' bursts; test/http/rate-limit.test.ts sets RATE_LIMIT=true.
    RATE_LIMIT: 'false',
    // The run's folder (global-setup.ts), not the checkout's .data.
    ...(process.env.AUDIT_ANCHOR_DIR ? { AUDIT_ANCHOR_DIR: process.env.AUDIT_ANCHOR_DIR } : {}),
    ...env,
  });
  const server = await startServer(config, pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));
  return { server, base: `${config.publicUrl}/fhir` };
}
