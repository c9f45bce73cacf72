import type { Knex } from 'knex';
import { JWK, JWS } from 'node-jose';
import { crlVersions, newRevocationSecret, revocationId } from './health-card-revocation';

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
  /** The counter of the key's Card Revocation List (health-card-revocation.ts). */
  crlVersion?: number;
}

/** The server's long-lived SMART Health Card issuer key (storage/migrations/005-health-card-keys.ts). */
export interface HealthCardKey {
  /**
   * A compact JWS of `compressedPayload` (the caller DEFLATEs it: the header announces
   * `zip: "DEF"`) with the header the spec requires: alg ES256, zip DEF, kid = thumbprint.
   */
  sign(compressedPayload: Buffer): Promise<string>;
  /** The revocation id (`vc.rid`) of a patient's cards under the signing key. */
  revocationId(patientId: string): Promise<string>;
  /** Every published issuer key (the signing one and those that signed cards still in circulation), each with its `crlVersion`. */
  publicJwks(): Promise<{ keys: HealthCardPublicJwk[] }>;
  /** Reads the keys again at the next use (after `cli health-card rotate-key`; otherwise at most RELOAD_MS later). */
  refresh(): void;
}

interface KeyRow {
  kid: string;
  private_jwk: Record<string, unknown>;
  public_jwk: HealthCardPublicJwk;
  signs: boolean;
  rid_secret: string | null;
}

interface LoadedKeys {
  signer: JWK.Key;
  signerRow: KeyRow;
  published: HealthCardPublicJwk[];
}

/** How long a process signs with the keys it read: a rotation reaches every process within this. */
const RELOAD_MS = 60_000;

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
 * Kept in memory and read again every RELOAD_MS: the key never rotates by itself (cards
 * must verify for years), only by `cli health-card rotate-key`. The first process to
 * need it creates it; the others read the same row.
 */
export function createHealthCardKey(knex: Knex): HealthCardKey {
  let loading: Promise<LoadedKeys> | undefined;
  let loadedAt = 0;
  const loaded = (): Promise<LoadedKeys> => {
    if (loading && Date.now() - loadedAt > RELOAD_MS) loading = undefined;
    if (!loading) {
      loadedAt = Date.now();
      loading = loadOrCreate(knex).catch((err: unknown) => {
        // A database hiccup must not be remembered as the answer.
        loading = undefined;
        throw err;
      });
    }
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
    async revocationId(patientId) {
      const { signerRow } = await loaded();
      return revocationId(signerRow.rid_secret as string, signerRow.kid, patientId);
    },
    async publicJwks() {
      const [{ published }, versions] = await Promise.all([loaded(), crlVersions(knex)]);
      return { keys: published.map((key) => ({ ...key, crlVersion: versions.get(key.kid) ?? 1 })) };
    },
    refresh() {
      loading = undefined;
    },
  };
}

/**
 * `cli health-card rotate-key`: a new key signs from now on (in every process within
 * RELOAD_MS); the one before stays published, so the cards it signed still verify and can
 * still be revoked. Returns the new kid.
 */
export async function rotateHealthCardKey(knex: Knex): Promise<string> {
  const created = await newKey();
  await knex.transaction(async (tx) => {
    await tx('health_card_key').where({ signs: true }).update({ signs: false });
    await tx('health_card_key').insert({
      kid: created.kid,
      private_jwk: JSON.stringify(created.privateJwk),
      public_jwk: JSON.stringify(created.publicJwk),
      rid_secret: newRevocationSecret(),
    });
  });
  return created.kid;
}

async function loadOrCreate(knex: Knex): Promise<LoadedKeys> {
  let rows = await readKeys(knex);
  if (!rows.some((r) => r.signs)) {
    const created = await newKey();
    // Race-free across processes: at most one row signs (partial unique index), so of
    // several processes creating at once, one insert wins and every process reads it.
    await knex.raw('INSERT INTO health_card_key (kid, private_jwk, public_jwk, rid_secret) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING', [
      created.kid,
      JSON.stringify(created.privateJwk),
      JSON.stringify(created.publicJwk),
      newRevocationSecret(),
    ]);
    rows = await readKeys(knex);
  }
  if (rows.some((r) => !r.rid_secret)) {
    // Keys made before revocation existed: each gets a secret once (the first process's wins).
    for (const row of rows.filter((r) => !r.rid_secret)) {
      await knex('health_card_key').where({ kid: row.kid }).whereNull('rid_secret').update({ rid_secret: newRevocationSecret() });
    }
    rows = await readKeys(knex);
  }
  const signerRow = rows.find((r) => r.signs);
  if (!signerRow) throw new Error('No SMART Health Card issuer key after creating one');
  const signer = await JWK.asKey({ ...signerRow.private_jwk, kid: signerRow.kid, alg: HEALTH_CARD_ALG, use: 'sig' }, 'json');
  return { signer, signerRow, published: rows.map((r) => r.public_jwk) };
}

function readKeys(knex: Knex): Promise<KeyRow[]> {
  return knex('health_card_key').select('kid', 'private_jwk', 'public_jwk', 'signs', 'rid_secret').orderBy('created_at', 'asc');
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
