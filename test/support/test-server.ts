import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { loadConfig } from '../../server/config';
import { freePort } from '../../server/core/free-port';
import { createKnex } from '../../server/storage/database';
import { startServer, type RunningServer } from '../../server/start';
import { withDatabase } from './database-url';

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
  const adminUrl = process.env.TEST_ADMIN_DATABASE_URL as string;
  const template = process.env.TEST_TEMPLATE_DATABASE as string;
  const database = `fhir_test_${randomBytes(6).toString('hex')}`;
  const admin = createKnex(adminUrl, 1);
  await admin.raw(`CREATE DATABASE "${database}" TEMPLATE "${template}"`);
  await admin.destroy();

  const port = await freePort();
  const config = loadConfig({
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    DATABASE_URL: withDatabase(adminUrl, database),
    // The interaction tests run without tokens; the auth tests pass AUTH_REQUIRED=true.
    AUTH_REQUIRED: 'false',
    // Rate limits would throttle the suites' bursts; test/http/rate-limit.test.ts sets RATE_LIMIT=true.
    RATE_LIMIT: 'false',
    ...env,
  });
  const server = await startServer(config, pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));
  const base = `${config.publicUrl}/fhir`;
  return {
    base,
    url: server.url,
    databaseUrl: withDatabase(adminUrl, database),
    server,
    stop: async () => {
      await server.stop();
      const drop = createKnex(adminUrl, 1);
      await drop.raw(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await drop.destroy();
    },
  };
}

