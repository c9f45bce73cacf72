import Redis from 'ioredis';
import type { Context, Middleware } from 'koa';
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RateLimitConfig } from '../config';
import { tooManyRequests } from '../core/outcome';

/** The endpoints that take a secret (client secret or assertion, password, TOTP): guessing is slowed down per address. */
const SECRET_PATHS: ReadonlySet<string> = new Set(['/auth/token', '/auth/login', '/auth/login/totp']);
/** Never limited (health mounts before these middlewares anyway: belt and braces). */
const UNLIMITED_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

export type LimitKind = 'client' | 'address' | 'auth';

/** What one consume decided: `allowed` false means 429 with Retry-After `retryAfterSeconds`. */
export interface LimitDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the current window ends (at least 1). */
  retryAfterSeconds: number;
}

/**
 * Fixed one-minute windows per client, per address and (stricter) per address on the
 * secret-taking auth endpoints, with rate-limiter-flexible.
 *
 * - With a Redis URL the counts live in Redis under `prefix`, so every process and
 *   replica shares them. Without one they live in memory and are per process: with
 *   WORKERS > 1 or several replicas each process allows the full numbers.
 * - The address is `ctx.ip`. The app runs with `app.proxy = true`, so it is the first
 *   X-Forwarded-For entry: the server must sit behind a proxy that sets (overwrites) that
 *   header, or a client can pick its own address and dodge the per-address limit.
 * - Fail open: if Redis is unreachable or errors, the request goes through (logged, at
 *   most once a minute) rather than every request being refused while Redis is down.
 *   The limits protect capacity and slow down guessing; they are not access control.
 */
export class RateLimits {
  private readonly limiters: Record<LimitKind, RateLimiterAbstract>;
  private lastFailureLog = 0;

  private constructor(
    private readonly settings: RateLimitConfig,
    private readonly logger: Logger,
    private readonly redis?: Redis
  ) {
    const make = (kind: LimitKind, points: number): RateLimiterAbstract => {
      const options = { points, duration: 60, keyPrefix: `${settings.redisKeyPrefix}:${kind}` };
      return redis
        ? // rejectIfRedisNotReady: while disconnected, fail at once (and open) instead of queueing.
          new RateLimiterRedis({ ...options, storeClient: redis, rejectIfRedisNotReady: true })
        : new RateLimiterMemory(options);
    };
    this.limiters = {
      client: make('client', settings.perClientPerMinute),
      address: make('address', settings.perAddressPerMinute),
      auth: make('auth', settings.authPerAddressPerMinute),
    };
  }

  static create(settings: RateLimitConfig, redisUrl: string | undefined, logger: Logger): RateLimits {
    if (!settings.enabled || !redisUrl) return new RateLimits(settings, logger);
    const redis = new Redis(redisUrl, {
      // Commands fail fast while the connection is down (the limiter then fails open)
      // instead of piling up in the offline queue and holding requests.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
    });
    const limits = new RateLimits(settings, logger, redis);
    redis.on('error', (err) => limits.logFailure(err));
    return limits;
  }

  /** Counts one request against `key` in the `kind` budget. Never rejects: store failures allow the request. */
  async consume(kind: LimitKind, key: string): Promise<LimitDecision> {
    const limiter = this.limiters[kind];
    try {
      return decision(limiter.points, await limiter.consume(key), true);
    } catch (err) {
      if (err instanceof RateLimiterRes) return decision(limiter.points, err, false);
      this.logFailure(err);
      return { allowed: true, limit: limiter.points, remaining: limiter.points, retryAfterSeconds: 60 };
    }
  }

  /**
   * Before the authorization server's routes: per source address on every path but the
   * health checks, and the stricter per-address budget on POSTs to the secret endpoints.
   */
  byAddress(): Middleware {
    if (!this.settings.enabled) return (_ctx, next) => next();
    return async (ctx, next) => {
      if (UNLIMITED_PATHS.has(ctx.path)) return next();
      const address = ctx.ip || 'unknown';
      const results = [await this.consume('address', address)];
      if (ctx.method === 'POST' && SECRET_PATHS.has(ctx.path)) results.push(await this.consume('auth', address));
      if (!this.admit(ctx, results, 'from this address')) return;
      return next();
    };
  }

  /** After bearerAuth: per OAuth client of the request's valid token (none: nothing to count). */
  byClient(): Middleware {
    if (!this.settings.enabled) return (_ctx, next) => next();
    return async (ctx, next) => {
      const clientId = ctx.state.principal?.clientId;
      if (clientId === undefined) return next();
      if (!this.admit(ctx, [await this.consume('client', clientId)], 'for this client')) return;
      return next();
    };
  }

  async close(): Promise<void> {
    if (!this.redis || this.redis.status === 'end') return;
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis?.disconnect());
    else this.redis.disconnect();
  }

  /**
   * Sets RateLimit-Limit / -Remaining / -Reset (draft-ietf-httpapi-ratelimit-headers) from
   * the tightest budget seen so far in this request; answers 429 when one is spent.
   */
  private admit(ctx: Context, results: LimitDecision[], whose: string): boolean {
    const previous = ctx.state.rateLimit as LimitDecision | undefined;
    // A refused budget first, then the fewest remaining, then the smallest limit.
    const rank = (r: LimitDecision): [number, number, number] => [r.allowed ? 1 : 0, r.remaining, r.limit];
    const tighter = (a: LimitDecision, b: LimitDecision): LimitDecision => {
      const [x, y] = [rank(a), rank(b)];
      const i = x.findIndex((v, k) => v !== y[k]);
      return i >= 0 && y[i] < x[i] ? b : a;
    };
    const tightest = [...results, ...(previous ? [previous] : [])].reduce(tighter);
    ctx.state.rateLimit = tightest;
    ctx.set('RateLimit-Limit', String(tightest.limit));
    ctx.set('RateLimit-Remaining', String(tightest.remaining));
    ctx.set('RateLimit-Reset', String(tightest.retryAfterSeconds));
    const refused = results.filter((r) => !r.allowed);
    if (refused.length === 0) return true;
    const retryAfter = Math.max(...refused.map((r) => r.retryAfterSeconds));
    const text = `Too many requests ${whose}; retry after ${retryAfter} seconds`;
    ctx.state.log?.warn({ path: ctx.path, ip: ctx.ip, clientId: ctx.state.principal?.clientId }, 'rate limited');
    if (ctx.path.startsWith('/auth/')) {
      // The authorization server's style: RFC 6749-like JSON, never cached.
      ctx.status = 429;
      ctx.set('Retry-After', String(retryAfter));
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'too_many_requests', error_description: text };
      return false;
    }
    // FHIR API (and anything else): an OperationOutcome from the error middleware.
    throw tooManyRequests(text, retryAfter);
  }

  private logFailure(err: unknown): void {
    const now = Date.now();
    if (now - this.lastFailureLog < 60_000) return;
    this.lastFailureLog = now;
    this.logger.warn({ err }, 'rate limit store unavailable: requests are not limited until it is back');
  }
}

function decision(limit: number, res: RateLimiterRes, allowed: boolean): LimitDecision {
  return {
    allowed,
    limit,
    remaining: Math.max(0, res.remainingPoints),
    retryAfterSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)),
  };
}
