import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createSecureContext } from 'node:tls';

/** Every setting of the server. Only this module reads process.env. */
export interface Config {
  port: number;
  /** Server processes sharing the port (node:cluster); 1 runs the server in this process. */
  workers: number;
  host: string;
  publicUrl: string;
  /**
   * TLS_CERT_FILE and TLS_KEY_FILE (PEM): the server itself speaks HTTPS (TLS 1.2 or later),
   * as SMART requires of authorization and FHIR endpoints; without, plain HTTP for a
   * TLS-terminating proxy in front.
   */
  tls?: { cert: Buffer; key: Buffer };
  /** Set by a WORKERS primary for its workers when `databaseUrl` is its embedded PostgreSQL (EMBEDDED_DATABASE=1, internal). */
  databaseIsEmbedded: boolean;
  /** Unset: an embedded PostgreSQL is started with its data in `dataDir`. */
  databaseUrl?: string;
  databasePoolMax: number;
  /** Unset: jobs run in-process from the PostgreSQL outbox; set: BullMQ on this Redis schedules them (server/jobs/bullmq-jobs.ts). */
  redisUrl?: string;
  /** Prefix of the BullMQ keys, so deployments (and tests) sharing a Redis keep their queues apart. */
  jobsRedisPrefix: string;
  dataDir: string;
  maxBodyBytes: number;
  searchDefaultCount: number;
  searchMaxCount: number;
  historyDefaultCount: number;
  /** Entries a transaction or batch Bundle may have. */
  bundleMaxEntries: number;
  logLevel: string;
  shutdownTimeoutMs: number;
  /**
   * How often each process checks whether a SearchParameter was written elsewhere (and
   * looks for reindex work). Every process sharing a database should use the same value:
   * reindex jobs wait two of these intervals before they start.
   */
  searchParameterRefreshMs: number;
  /** Rows per reindex batch (one transaction, one UPDATE). */
  reindexBatchSize: number;
  /**
   * How long a finished Bulk Data export (its manifest and files) is kept after it
   * completed, announced in the status answer's `Expires` header; then it is gone (404)
   * and its rows are deleted.
   */
  exportRetentionSeconds: number;
  auth: AuthConfig;
  /**
   * true (the default): an AuditEvent for every interaction (docs/audit.md). false only
   * to measure what auditing costs (bench:audit); never in production.
   */
  audit: boolean;
  /**
   * Where reads' AuditEvents are written before the answer (docs/audit.md): `journal`
   * (the default) appends them to a file of this process under `auditJournalDir`, moved
   * into PostgreSQL in batches within a quarter of a second; `database` inserts them
   * before answering.
   */
  auditReads: 'journal' | 'database';
  /** The journals' folder (one subfolder per database); a volume of its own in containers. */
  auditJournalDir: string;
  /**
   * Where each audit stream's newest sealed link is written, outside the database (one
   * subfolder per database instance), for `audit verify` to check the chain against.
   */
  auditAnchorDir: string;
  /** How often a journal is moved into PostgreSQL when fewer than a thousand events wait. */
  auditJournalIntervalMs: number;
  /** fdatasync every journal write: reads' AuditEvents then also outlive a crash of the machine. */
  auditJournalSync: boolean;
  /** true (the default): Prometheus metrics at GET /metrics (http/metrics.ts). */
  metrics: boolean;
  /**
   * true (the default): a user with the `patient` role also sees the records of the
   * patients they act for as parent, guardian or power of attorney (RelatedPerson;
   * access/patient-dependants.ts). false: only their own.
   */
  patientDependants: boolean;
  /** Index every word of every resource for `_content` (search/full-text-settings.ts): a write cost on every type. */
  searchContent: boolean;
  rateLimit: RateLimitConfig;
}

/**
 * Request rate limits (http/rate-limit.ts). Counted in Redis when REDIS_URL is set, so
 * every process and replica shares them; otherwise in memory, per process (with
 * WORKERS > 1 or several replicas each process then allows these numbers on its own).
 */
export interface RateLimitConfig {
  /** RATE_LIMIT=false turns every limit off (benchmarks, tests). */
  enabled: boolean;
  /** Requests per minute for one OAuth client (the token's client_id) on the FHIR API. */
  perClientPerMinute: number;
  /** Requests per minute from one source address (X-Forwarded-For honoured: app.proxy). */
  perAddressPerMinute: number;
  /** POSTs per minute from one address to the endpoints that take secrets: /auth/token, /auth/login, /auth/login/totp. */
  authPerAddressPerMinute: number;
  /** Prefix of the Redis keys, so deployments (and tests) sharing a Redis keep their counts apart. */
  redisKeyPrefix: string;
}

/** The SMART / OAuth 2 authorization server and the enforcement of its tokens. */
export interface AuthConfig {
  /**
   * true (the default): every FHIR request but the CapabilityStatement needs a bearer
   * token. false (AUTH_REQUIRED=false, for local development only): requests without a
   * token have full access; a request with a token is still held to it.
   */
  required: boolean;
  accessTokenSeconds: number;
  refreshTokenSeconds: number;
  /** Authorization codes live this long (RFC 6749 recommends at most 10 minutes). */
  codeSeconds: number;
  /** A signing key signs for this long, then a new one takes over (the old stays in the JWKS until its tokens expire). */
  signingKeyRotationSeconds: number;
  /** Failed logins in a row before an account is locked. */
  loginMaxFailures: number;
  /** How long the first lock lasts; each further failure while locked doubles it. */
  loginLockSeconds: number;
  /** Origins allowed by CORS on discovery, token and the FHIR API; '*' for any. */
  corsOrigins: string[];
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return undefined;
  }
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be a URL, got "${raw}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(' or ')}, got "${parsed.protocol}"`);
  }
  return raw;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function redisKeyPrefix(env: Env, name: string, fallback: string): string {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^[A-Za-z0-9:._-]{1,64}$/.test(raw)) {
    throw new ConfigError(`${name} must be 1 to 64 letters, digits or : . _ -, got "${raw}"`);
  }
  return raw;
}

function auditReads(raw: string | undefined): 'journal' | 'database' {
  if (raw === undefined || raw === '') return 'journal';
  if (raw === 'journal' || raw === 'database') return raw;
  throw new ConfigError(`AUDIT_READS must be journal or database, got "${raw}"`);
}

/** The certificate chain and private key of TLS_CERT_FILE and TLS_KEY_FILE: both or neither. */
function tlsFiles(env: Env): { cert: Buffer; key: Buffer } | undefined {
  const certFile = env.TLS_CERT_FILE || undefined;
  const keyFile = env.TLS_KEY_FILE || undefined;
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new ConfigError('TLS_CERT_FILE and TLS_KEY_FILE go together: set both (PEM files) or neither');
  const read = (name: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(`${name} cannot be read: ${(err as Error).message}`);
    }
  };
  const files = { cert: read('TLS_CERT_FILE', certFile), key: read('TLS_KEY_FILE', keyFile) };
  try {
    createSecureContext(files);
  } catch (err) {
    throw new ConfigError(`TLS_CERT_FILE and TLS_KEY_FILE must be a PEM certificate (chain) and its private key: ${(err as Error).message}`);
  }
  return files;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: Env = process.env): Config {
  const port = integer(env, 'PORT', 8080, 0, 65535);
  const host = env.HOST || '127.0.0.1';
  const tls = tlsFiles(env);
  const publicUrl = (url(env, 'PUBLIC_URL', ['http:', 'https:']) ?? `${tls ? 'https' : 'http'}://localhost:${port}`).replace(/\/+$/, '');
  const logLevel = env.LOG_LEVEL || 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  const searchMaxCount = integer(env, 'SEARCH_MAX_COUNT', 1000, 1, 100000);
  const dataDir = path.resolve(env.DATA_DIR || path.join(__dirname, '..', '.data'));
  return {
    port,
    workers: integer(env, 'WORKERS', 1, 1, 64),
    host,
    publicUrl,
    ...(tls ? { tls } : {}),
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    databaseIsEmbedded: boolean(env, 'EMBEDDED_DATABASE', false),
    databasePoolMax: integer(env, 'DATABASE_POOL_MAX', 20, 1, 1000),
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    jobsRedisPrefix: redisKeyPrefix(env, 'JOBS_REDIS_PREFIX', 'fhir:jobs'),
    dataDir,
    maxBodyBytes: integer(env, 'MAX_BODY_BYTES', 16 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    searchDefaultCount: Math.min(integer(env, 'SEARCH_DEFAULT_COUNT', 20, 1, 100000), searchMaxCount),
    searchMaxCount,
    historyDefaultCount: integer(env, 'HISTORY_DEFAULT_COUNT', 100, 1, 100000),
    bundleMaxEntries: integer(env, 'BUNDLE_MAX_ENTRIES', 10000, 1, 1000000),
    logLevel,
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 10000, 0, 600000),
    searchParameterRefreshMs: integer(env, 'SEARCH_PARAMETER_REFRESH_MS', 1000, 50, 600000),
    reindexBatchSize: integer(env, 'REINDEX_BATCH_SIZE', 500, 1, 10000),
    exportRetentionSeconds: integer(env, 'EXPORT_RETENTION_SECONDS', 24 * 3600, 1, 365 * 24 * 3600),
    audit: boolean(env, 'AUDIT', true),
    auditReads: auditReads(env.AUDIT_READS),
    auditJournalDir: path.resolve(env.AUDIT_JOURNAL_DIR || path.join(dataDir, 'audit-journal')),
    auditAnchorDir: path.resolve(env.AUDIT_ANCHOR_DIR || path.join(dataDir, 'audit-anchors')),
    auditJournalIntervalMs: integer(env, 'AUDIT_JOURNAL_INTERVAL_MS', 250, 10, 600000),
    auditJournalSync: boolean(env, 'AUDIT_JOURNAL_SYNC', false),
    metrics: boolean(env, 'METRICS', true),
    patientDependants: boolean(env, 'PATIENT_DEPENDANTS', true),
    searchContent: boolean(env, 'SEARCH_CONTENT', false),
    auth: {
      required: boolean(env, 'AUTH_REQUIRED', true),
      accessTokenSeconds: integer(env, 'ACCESS_TOKEN_SECONDS', 900, 10, 86400),
      refreshTokenSeconds: integer(env, 'REFRESH_TOKEN_SECONDS', 30 * 86400, 60, 365 * 86400),
      codeSeconds: integer(env, 'AUTH_CODE_SECONDS', 60, 5, 600),
      signingKeyRotationSeconds: integer(env, 'SIGNING_KEY_ROTATION_SECONDS', 86400, 60, 365 * 86400),
      loginMaxFailures: integer(env, 'LOGIN_MAX_FAILURES', 5, 1, 1000),
      loginLockSeconds: integer(env, 'LOGIN_LOCK_SECONDS', 60, 1, 86400),
      corsOrigins: (env.CORS_ORIGINS || '*').split(',').map((o) => o.trim()).filter(Boolean),
    },
    rateLimit: {
      enabled: boolean(env, 'RATE_LIMIT', true),
      perClientPerMinute: integer(env, 'RATE_LIMIT_PER_CLIENT_PER_MINUTE', 60000, 1, 10_000_000),
      perAddressPerMinute: integer(env, 'RATE_LIMIT_PER_ADDRESS_PER_MINUTE', 60000, 1, 10_000_000),
      authPerAddressPerMinute: integer(env, 'RATE_LIMIT_AUTH_PER_ADDRESS_PER_MINUTE', 600, 1, 1_000_000),
      redisKeyPrefix: redisKeyPrefix(env, 'RATE_LIMIT_REDIS_PREFIX', 'fhir:rate-limit'),
    },
  };
}
