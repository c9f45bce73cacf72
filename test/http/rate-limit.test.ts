import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { loadConfig } from '../../server/config';
import { RateLimits } from '../../server/http/rate-limit';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * Tiny limits so a handful of requests reach them. Each test speaks from its own
 * X-Forwarded-For address (the app trusts the proxy header), so budgets don't mix.
 */
let server: TestServer;
let nextAddress = 1;
const freshAddress = (): string => `10.0.${Math.floor(nextAddress / 250)}.${(nextAddress++ % 250) + 1}`;

beforeAll(async () => {
  server = await startTestServer({
    RATE_LIMIT: 'true',
    RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '3',
    RATE_LIMIT_PER_CLIENT_PER_MINUTE: '3',
    RATE_LIMIT_AUTH_PER_ADDRESS_PER_MINUTE: '2',
  });
}, 60000);

afterAll(async () => {
  await server?.stop();
});

const get = (path: string, headers: Record<string, string>) => fetch(`${server.url}${path}`, { headers });

describe('rate limiting', () => {
  it('answers the 4th request from one address with 429, Retry-After and a throttled OperationOutcome', async () => {
    const from = { 'X-Forwarded-For': freshAddress() };
    for (let i = 0; i < 3; i++) {
      const ok = await get('/fhir/metadata', from);
      expect(ok.status).toBe(200);
      expect(ok.headers.get('RateLimit-Remaining')).toBe(String(2 - i));
    }
    const res = await get('/fhir/metadata', from);
    expect(res.status).toBe(429);
    const retryAfter = Number(res.headers.get('Retry-After'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const body = await res.json();
    expect(body.resourceType).toBe('OperationOutcome');
    expect(body.issue[0].code).toBe('throttled');
    // Another address is not affected.
    expect((await get('/fhir/metadata', { 'X-Forwarded-For': freshAddress() })).status).toBe(200);
  });

  it('gives each client its own budget, whatever address its requests come from', async () => {
    const alpha = await mintToken(server, { scope: 'system/*.rs', clientId: 'alpha' });
    const beta = await mintToken(server, { scope: 'system/*.rs', clientId: 'beta' });
    const as = (token: string) => ({ Authorization: `Bearer ${token}`, 'X-Forwarded-For': freshAddress() });
    for (let i = 0; i < 3; i++) expect((await get('/fhir/Patient?_count=1', as(alpha))).status).toBe(200);
    const refused = await get('/fhir/Patient?_count=1', as(alpha));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('Retry-After')).toMatch(/^\d+$/);
    expect((await refused.json()).issue[0].code).toBe('throttled');
    expect((await get('/fhir/Patient?_count=1', as(beta))).status).toBe(200);
  });

  it('holds the token endpoint to its stricter per-address limit, with an OAuth-style JSON error', async () => {
    const from = freshAddress();
    const post = () =>
      fetch(`${server.url}/auth/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Forwarded-For': from },
        body: 'grant_type=client_credentials&client_id=nobody&client_secret=guess',
      });
    for (let i = 0; i < 2; i++) expect((await post()).status).not.toBe(429);
    // The 3rd request is within the general per-address budget (3), not within the token endpoint's (2).
    const res = await post();
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('Retry-After'))).toBeGreaterThanOrEqual(1);
    expect(res.headers.get('Cache-Control')).toBe('no-store');
    expect((await res.json()).error).toBe('too_many_requests');
    expect(res.headers.get('RateLimit-Limit')).toBe('2');
  });

  it('never limits /healthz and /readyz, even for an address over its limit', async () => {
    const from = { 'X-Forwarded-For': freshAddress() };
    for (let i = 0; i < 4; i++) await get('/fhir/metadata', from);
    expect((await get('/fhir/metadata', from)).status).toBe(429);
    for (let i = 0; i < 5; i++) {
      expect((await get('/healthz', from)).status).toBe(200);
      expect((await get('/readyz', from)).status).toBe(200);
    }
  });
});

describe('the Redis-backed limiter', () => {
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const settings = (prefix: string) =>
    loadConfig({ RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '3', RATE_LIMIT_REDIS_PREFIX: prefix }).rateLimit;
  const logger = pino({ level: 'silent' });

  it('shares the counts between two instances (replicas) on the same prefix', async () => {
    const prefix = `test-rl-${randomBytes(6).toString('hex')}`;
    const a = RateLimits.create(settings(prefix), redisUrl, logger);
    const b = RateLimits.create(settings(prefix), redisUrl, logger);
    const other = RateLimits.create(settings(`${prefix}-other`), redisUrl, logger);
    try {
      // Let the connections come up: while not ready the limiter fails open.
      await new Promise((r) => setTimeout(r, 200));
      expect((await a.consume('address', '192.0.2.1')).allowed).toBe(true);
      expect((await b.consume('address', '192.0.2.1')).allowed).toBe(true);
      expect((await a.consume('address', '192.0.2.1')).allowed).toBe(true);
      const fourth = await b.consume('address', '192.0.2.1');
      expect(fourth).toMatchObject({ allowed: false, remaining: 0 });
      expect(fourth.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect((await other.consume('address', '192.0.2.1')).allowed).toBe(true);
    } finally {
      await Promise.all([a.close(), b.close(), other.close()]);
    }
  });

  it('fails open when Redis cannot be reached', async () => {
    const down = RateLimits.create(settings('test-rl-down'), 'redis://127.0.0.1:1', logger);
    try {
      for (let i = 0; i < 5; i++) expect((await down.consume('address', '192.0.2.2')).allowed).toBe(true);
    } finally {
      await down.close();
    }
  });
});
