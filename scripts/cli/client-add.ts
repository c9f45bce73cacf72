import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { JSONWebKeySet, JWK } from 'jose';
import type { Knex } from 'knex';
import { findClient, type NewClient, saveClient } from '../../server/auth/client-store';
import { parseScope, splitScopes } from '../../server/access/scopes';

/**
 * A mistake of the person running the CLI: printed as one line on stderr, exit code 1,
 * no stack trace. (user-add.ts uses it too.)
 */
export class CliError extends Error {}

/** `client add` as commander hands it over. */
export interface ClientAddOptions {
  id: string;
  name?: string;
  secret?: string;
  jwksFile?: string;
  jwksUrl?: string;
  public?: boolean;
  redirectUri?: string[];
  scope: string;
}

/** A checked registration, ready to save, and the line that reports it. */
export interface ClientPlan {
  client: NewClient;
  summary: string;
  warnings: string[];
}

/**
 * Checks the options without touching the database, so that a mistake is reported
 * before anything is opened or written.
 */
export function planClient(options: ClientAddOptions, readFile: (file: string) => string = (f) => readFileSync(f, 'utf8')): ClientPlan {
  const warnings: string[] = [];
  if (!/^[\x21-\x7e]{1,255}$/.test(options.id)) {
    throw new CliError(`--id "${options.id}" is not a client id: use 1 to 255 printable ASCII characters without spaces`);
  }

  const kinds = [options.secret !== undefined, options.jwksFile !== undefined || options.jwksUrl !== undefined, options.public === true];
  if (kinds.filter(Boolean).length !== 1) {
    throw new CliError('give exactly one of --secret (confidential client), --jwks-file or --jwks-url (backend service), --public (public app)');
  }
  if (options.jwksFile !== undefined && options.jwksUrl !== undefined) {
    throw new CliError('give either --jwks-file or --jwks-url, not both');
  }

  const scopes = splitScopes(options.scope);
  if (scopes.length === 0) {
    throw new CliError('--scope is empty: give the scopes the client may be granted, e.g. --scope "system/*.read"');
  }
  const bad = scopes.filter((s) => parseScope(s) === undefined);
  if (bad.length > 0) {
    throw new CliError(`unknown or malformed scope${bad.length > 1 ? 's' : ''}: ${bad.map((s) => `"${s}"`).join(', ')}`);
  }
  if (options.public && scopes.some((s) => s.startsWith('system/'))) {
    throw new CliError('a public client cannot be granted system/ scopes (they need client authentication: use --secret or --jwks-file)');
  }
  const scope = scopes.join(' ');

  const redirectUris = (options.redirectUri ?? []).map((uri) => checkRedirectUri(uri, warnings));
  if (options.public && redirectUris.length === 0) {
    throw new CliError('--public needs at least one --redirect-uri (the app\'s OAuth callback URL)');
  }
  const uniqueRedirects = [...new Set(redirectUris)];
  const redirects = uniqueRedirects.length > 0 ? `; redirect URIs: ${uniqueRedirects.join(' ')}` : '';

  const client: NewClient = { id: options.id, name: options.name, scope, redirectUris: uniqueRedirects };
  let kind: string;
  if (options.secret !== undefined) {
    if (options.secret.length === 0) throw new CliError('--secret is empty');
    if (options.secret.length < 16) warnings.push('the client secret is shorter than 16 characters; use a long random value outside development');
    client.secret = options.secret;
    kind = 'confidential, client_secret_basic/client_secret_post';
  } else if (options.public) {
    client.public = true;
    kind = 'public, PKCE S256 required';
  } else if (options.jwksFile !== undefined) {
    const jwks = readJwks(options.jwksFile, readFile, warnings);
    client.jwks = jwks;
    kind = `backend service, private_key_jwt RS384/ES384; ${jwks.keys.length} key${jwks.keys.length > 1 ? 's' : ''} from ${options.jwksFile}`;
  } else {
    client.jwksUrl = checkJwksUrl(options.jwksUrl as string);
    kind = `backend service, private_key_jwt RS384/ES384; keys from ${client.jwksUrl}`;
  }
  return { client, summary: `client ${options.id} registered (${kind}${redirects}; scope: ${scope})`, warnings };
}

/** Registers the client (or replaces the registration of the same id) and returns the report line. */
export async function addClient(knex: Knex, plan: ClientPlan): Promise<{ summary: string; replaced: boolean }> {
  const replaced = (await findClient(knex, plan.client.id)) !== undefined;
  await saveClient(knex, plan.client);
  return { summary: plan.summary, replaced };
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
const DANGEROUS_SCHEMES = new Set(['javascript:', 'data:', 'file:', 'vbscript:', 'blob:', 'about:']);

/**
 * An absolute URL without a fragment (RFC 6749 §3.1.2): https, http (loopback, or with a
 * warning elsewhere) or a native app's private-use scheme (RFC 8252 §7.1, `com.example.app:`).
 */
function checkRedirectUri(raw: string, warnings: string[]): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(`--redirect-uri "${raw}" is not an absolute URL`);
  }
  if (url.hash !== '' || raw.includes('#')) {
    throw new CliError(`--redirect-uri "${raw}" must not contain a fragment (#)`);
  }
  if (DANGEROUS_SCHEMES.has(url.protocol)) {
    throw new CliError(`--redirect-uri "${raw}": the ${url.protocol} scheme cannot be a redirect URI`);
  }
  if (url.protocol === 'http:') {
    if (!LOOPBACK.has(url.hostname)) {
      warnings.push(`redirect URI ${raw} uses plain http: authorization codes travel unencrypted; use https outside development`);
    }
  } else if (url.protocol !== 'https:' && !url.protocol.includes('.')) {
    throw new CliError(`--redirect-uri "${raw}": use https, http on localhost, or a private-use scheme in reverse-domain form (com.example.app:/callback)`);
  }
  return raw;
}

function checkJwksUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(`--jwks-url "${raw}" is not an absolute URL`);
  }
  const localHttp = url.protocol === 'http:' && (url.hostname === 'localhost' || url.hostname === '127.0.0.1');
  if (url.protocol !== 'https:' && !localHttp) {
    throw new CliError(`--jwks-url "${raw}" must use https (plain http only on localhost or 127.0.0.1)`);
  }
  if (url.hash !== '') throw new CliError(`--jwks-url "${raw}" must not contain a fragment (#)`);
  return raw;
}

/** Members that only a private or secret key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/**
 * The JWKS of a backend service: only public keys, at least one of them able to verify
 * RS384 (RSA, 2048 bits or more) or ES384 (EC P-384). Keys that cannot are left out, with
 * a warning, so that the token endpoint never trusts a key for another algorithm.
 */
function readJwks(file: string, readFile: (file: string) => string, warnings: string[]): JSONWebKeySet {
  let text: string;
  try {
    text = readFile(file);
  } catch (err) {
    throw new CliError(`--jwks-file ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CliError(`--jwks-file ${file}: not JSON (${(err as Error).message})`);
  }
  if (!isObject(json) || !Array.isArray(json.keys)) {
    const hint = isObject(json) && typeof json.kty === 'string' ? ' (this is a single JWK: wrap it as {"keys": [ ... ]})' : '';
    throw new CliError(`--jwks-file ${file}: expected a JWK Set, {"keys": [ ... ]}${hint}`);
  }
  if (json.keys.length === 0) throw new CliError(`--jwks-file ${file}: the key set is empty`);

  const usable: JWK[] = [];
  json.keys.forEach((key: unknown, index: number) => {
    const name = `key ${index + 1}${isObject(key) && typeof key.kid === 'string' ? ` (kid ${key.kid})` : ''}`;
    if (!isObject(key) || typeof key.kty !== 'string') {
      throw new CliError(`--jwks-file ${file}: ${name} is not a JWK (no "kty")`);
    }
    const secret = PRIVATE_MEMBERS.filter((m) => m in key);
    if (secret.length > 0) {
      throw new CliError(
        `--jwks-file ${file}: ${name} contains private key material (${secret.map((m) => `"${m}"`).join(', ')}); ` +
          'register only the public keys and keep the private key with the client'
      );
    }
    const problem = unusableBecause(key);
    if (problem) {
      warnings.push(`${file}: ${name} left out: ${problem}`);
      return;
    }
    if (typeof key.kid !== 'string') {
      warnings.push(`${file}: ${name} has no "kid"; clients name their key in the assertion's kid header, so give each key one`);
    }
    usable.push(key as JWK);
  });
  if (usable.length === 0) {
    throw new CliError(`--jwks-file ${file}: no key can verify RS384 or ES384 (an RSA key of 2048 bits or more, or an EC P-384 key)${warnings.length > 0 ? `: ${warnings.join('; ')}` : ''}`);
  }
  return { keys: usable };
}

/** Why a public JWK cannot verify RS384 or ES384 signatures, or undefined when it can. */
function unusableBecause(key: Record<string, unknown>): string | undefined {
  if (key.use !== undefined && key.use !== 'sig') return `"use" is "${String(key.use)}", not "sig"`;
  if (key.key_ops !== undefined && !(Array.isArray(key.key_ops) && key.key_ops.includes('verify'))) return '"key_ops" does not include "verify"';
  let details: ReturnType<typeof createPublicKey>['asymmetricKeyDetails'];
  if (key.kty === 'RSA' || key.kty === 'EC') {
    try {
      details = createPublicKey({ key: key as JsonWebKey, format: 'jwk' }).asymmetricKeyDetails;
    } catch (err) {
      return `not a valid ${key.kty} public key (${(err as Error).message})`;
    }
  }
  if (key.kty === 'RSA') {
    if (key.alg !== undefined && key.alg !== 'RS384') return `"alg" is "${String(key.alg)}"; only RS384 is accepted for RSA keys`;
    const bits = details?.modulusLength ?? 0;
    if (bits < 2048) return `an RSA key of ${bits} bits; at least 2048 are required`;
    return undefined;
  }
  if (key.kty === 'EC') {
    if (key.crv !== 'P-384') return `an EC key on curve ${String(key.crv)}; ES384 needs P-384`;
    if (key.alg !== undefined && key.alg !== 'ES384') return `"alg" is "${String(key.alg)}"; only ES384 is accepted for P-384 keys`;
    return undefined;
  }
  return `key type "${key.kty}"; only RSA (RS384) and EC P-384 (ES384) keys are accepted`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
