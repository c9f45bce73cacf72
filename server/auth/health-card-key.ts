import type { Knex } from 'knex';
import { JWK, JWS } from 'node-jose';

/** SMART Health Cards allow nothing else (https://spec.smarthealth.cards/#generating-and-resolving-cryptographic-keys). */
export const HEALTH_CARD_ALG = 'ES256';

/** An issuer key as verifiers fetch it from `iss` + /.well-known/jwks.json: the public point, never `d`. */
export interface HealthCardPublicJwk {
  kty: 'EC';
  kid: string;
  use: 'sig';
  alg: typeof HEALTH_CARD_ALG;
  crv: 'P-256';
  x: string;
  y: string;
}

/** The server's long-lived SMART Health Card issuer key (storage/migrations/005-health-card-keys.ts). */
export interface HealthCardKey {
  /**
   * A compact JWS of `compressedPayload` (the caller DEFLATEs it: the header announces
   * `zip: "DEF"`) with the header the spec requires: alg ES256, zip DEF, kid = thumbprint.
   */
  sign(compressedPayload: Buffer): Promise<string>;
  /** Every published issuer key: the signing one and those that signed cards still in circulation. */
  publicJwks(): Promise<{ keys: HealthCardPublicJwk[] }>;
}

interface KeyRow {
  kid: string;
  private_jwk: Record<string, unknown>;
  public_jwk: HealthCardPublicJwk;
  signs: boolean;
}

interface LoadedKeys {
  signer: JWK.Key;
  published: HealthCardPublicJwk[];
}

const byDatabase = new WeakMap<Knex, HealthCardKey>();

/** One key cache per database handle: the FHIR operation and the JWKS routes of a process share it. */
export function healthCardKeyFor(knex: Knex): HealthCardKey {
  let key = byDatabase.get(knex);
  if (!key) {
    key = createHealthCardKey(knex);
    byDatabase.set(knex, key);
  }
  return key;
}

/**
 * Loaded once per process and then kept in memory: the key never rotates by itself
 * (cards must verify for years), so there is nothing to reload. The first process to
 * need it creates it; the others read the same row.
 */
export function createHealthCardKey(knex: Knex): HealthCardKey {
  let loading: Promise<LoadedKeys> | undefined;
  const loaded = (): Promise<LoadedKeys> => {
    loading ??= loadOrCreate(knex).catch((err: unknown) => {
      // A database hiccup must not be remembered as the answer for the life of the process.
      loading = undefined;
      throw err;
    });
    return loading;
  };
  return {
    async sign(compressedPayload) {
      const { signer } = await loaded();
      // node-jose puts alg and kid (from the key) into the protected header; zip comes from `fields`.
      const signed = JWS.createSign({ format: 'compact', fields: { zip: 'DEF' } }, signer).update(compressedPayload).final();
      // With format "compact" final() resolves to the JWS string (its typings say otherwise).
      return (await signed) as unknown as string;
    },
    async publicJwks() {
      return { keys: (await loaded()).published };
    },
  };
}

async function loadOrCreate(knex: Knex): Promise<LoadedKeys> {
  let rows = await readKeys(knex);
  if (!rows.some((r) => r.signs)) {
    const created = await newKey();
    // Race-free across processes: at most one row signs (partial unique index), so of
    // several processes creating at once, one insert wins and every process reads it.
    await knex.raw('INSERT INTO health_card_key (kid, private_jwk, public_jwk) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [
      created.kid,
      JSON.stringify(created.privateJwk),
      JSON.stringify(created.publicJwk),
    ]);
    rows = await readKeys(knex);
  }
  const signerRow = rows.find((r) => r.signs);
  if (!signerRow) throw new Error('No SMART Health Card issuer key after creating one');
  const signer = await JWK.asKey({ ...signerRow.private_jwk, kid: signerRow.kid, alg: HEALTH_CARD_ALG, use: 'sig' }, 'json');
  return { signer, published: rows.map((r) => r.public_jwk) };
}

function readKeys(knex: Knex): Promise<KeyRow[]> {
  return knex('health_card_key').select('kid', 'private_jwk', 'public_jwk', 'signs').orderBy('created_at', 'asc');
}

async function newKey(): Promise<{ kid: string; privateJwk: Record<string, unknown>; publicJwk: HealthCardPublicJwk }> {
  const key = await JWK.createKey('EC', 'P-256', { alg: HEALTH_CARD_ALG, use: 'sig' });
  // RFC 7638 thumbprint (node-jose resolves a Buffer; its typings say string).
  const kid = Buffer.from((await key.thumbprint('SHA-256')) as unknown as Buffer).toString('base64url');
  const privateJwk = key.toJSON(true) as Record<string, unknown>;
  const { x, y } = privateJwk as { x: string; y: string };
  return {
    kid,
    privateJwk: { ...privateJwk, kid },
    publicJwk: { kty: 'EC', kid, use: 'sig', alg: HEALTH_CARD_ALG, crv: 'P-256', x, y },
  };
}
