import type { Knex } from 'knex';
import {
  SignJWT,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  type CryptoKey,
  type JWK,
  type JWTPayload,
  type JWTVerifyOptions,
} from 'jose';
import type { AuthContext } from './auth-exchange';

/** The one algorithm our tokens are signed with; verifiers accept nothing else (no alg confusion). */
export const SIGNING_ALG = 'RS256';

/**
 * Every process reads the keys from auth_signing_key (house rule 6) and keeps them this
 * long: a key another process created or rotated is seen at most this late. Signing with
 * a key a few seconds past its rotate_at is harmless: it stays published much longer.
 */
const RELOAD_MS = 1000;
/** A token with a kid we do not know makes us reload at most this often (a forged kid must not cost a query each). */
const UNKNOWN_KID_RELOAD_MS = 1000;
/** Published this long after its last token could expire: covers clock skew between processes and the reload delay. */
const RETIRE_MARGIN_SECONDS = 120;

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
  rotateAt: number;
  retiredAt: number;
}

interface KeyRow {
  kid: string;
  private_jwk: JWK;
  public_jwk: JWK;
  rotate_at: Date;
  retired_at: Date;
}

export interface SigningKeys {
  /** Signs with the current key (created or rotated on demand). `typ`: at+jwt for access tokens (RFC 9068), JWT for id tokens. */
  sign(payload: JWTPayload, typ: string): Promise<string>;
  /** The payload of a token signed by one of our published keys, checked as `options` say; throws otherwise. */
  verify(token: string, options: JWTVerifyOptions): Promise<JWTPayload>;
  /** The public keys of every unretired key (JWKS endpoint). */
  publicJwks(): Promise<{ keys: JWK[] }>;
}

const byContext = new WeakMap<AuthContext, SigningKeys>();

/** One key cache per authorization server (the token routes and the bearer verifier share it). */
export function signingKeysFor(context: AuthContext): SigningKeys {
  let keys = byContext.get(context);
  if (!keys) {
    keys = createSigningKeys(context.knex, context.config.auth.signingKeyRotationSeconds, context.config.auth.accessTokenSeconds);
    byContext.set(context, keys);
  }
  return keys;
}

export function createSigningKeys(knex: Knex, rotationSeconds: number, tokenSeconds: number): SigningKeys {
  let keys: SigningKey[] = [];
  let loadedAt = 0;
  let loading: Promise<void> | undefined;
  let unknownKidReloadAt = 0;
  const imported = new Map<string, SigningKey>();

  const reload = (): Promise<void> => {
    loading ??= (async () => {
      try {
        const rows: KeyRow[] = await knex('auth_signing_key')
          .select('kid', 'private_jwk', 'public_jwk', 'rotate_at', 'retired_at')
          .where('retired_at', '>', knex.fn.now())
          .orderBy('created_at', 'desc');
        keys = await Promise.all(rows.map((row) => toKey(row, imported)));
        loadedAt = Date.now();
      } finally {
        loading = undefined;
      }
    })();
    return loading;
  };

  /** A load that starts now: one already in flight may have begun before the row we need was written. */
  const reloadNow = async (): Promise<void> => {
    await loading?.catch(() => undefined);
    await reload();
  };

  /** Stale while revalidating: requests do not wait for the periodic reload, only for the first. */
  const fresh = async (): Promise<SigningKey[]> => {
    if (loadedAt === 0) await reload();
    else if (Date.now() - loadedAt > RELOAD_MS) reload().catch(() => undefined);
    return keys.filter((k) => k.retiredAt > Date.now());
  };

  let creating: Promise<void> | undefined;
  const current = async (): Promise<SigningKey> => {
    const signer = (await fresh()).find((k) => k.rotateAt > Date.now());
    if (signer) return signer;
    // One key generation per process at a time (RSA takes ~100 ms), however many requests wait.
    creating ??= (async () => {
      try {
        await createKeyUnlessAnother(knex, rotationSeconds, tokenSeconds);
        await reloadNow();
      } finally {
        creating = undefined;
      }
    })();
    await creating;
    const created = keys.find((k) => k.rotateAt > Date.now());
    if (!created) throw new Error('No current signing key after creating one');
    return created;
  };

  const byKid = async (kid: string | undefined): Promise<SigningKey> => {
    let key = (await fresh()).find((k) => k.kid === kid);
    if (!key && kid !== undefined && Date.now() - unknownKidReloadAt > UNKNOWN_KID_RELOAD_MS) {
      // A key another process created since our last reload.
      unknownKidReloadAt = Date.now();
      await reloadNow();
      key = keys.find((k) => k.kid === kid && k.retiredAt > Date.now());
    }
    if (!key) throw new Error('Unknown signing key');
    return key;
  };

  return {
    async sign(payload, typ) {
      const key = await current();
      return new SignJWT(payload).setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid, typ }).sign(key.privateKey);
    },
    async verify(token, options) {
      const { payload } = await jwtVerify(token, async (header) => (await byKid(header.kid)).publicKey, {
        ...options,
        algorithms: [SIGNING_ALG],
      });
      return payload;
    },
    async publicJwks() {
      await current();
      return { keys: (await fresh()).map((k) => k.publicJwk) };
    },
  };
}

async function toKey(row: KeyRow, imported: Map<string, SigningKey>): Promise<SigningKey> {
  const rotateAt = row.rotate_at.getTime();
  const retiredAt = row.retired_at.getTime();
  const known = imported.get(row.kid);
  if (known) return { ...known, rotateAt, retiredAt };
  const key: SigningKey = {
    kid: row.kid,
    privateKey: (await importJWK(row.private_jwk, SIGNING_ALG)) as CryptoKey,
    publicKey: (await importJWK(row.public_jwk, SIGNING_ALG)) as CryptoKey,
    publicJwk: { kty: row.public_jwk.kty, n: row.public_jwk.n, e: row.public_jwk.e, kid: row.kid, alg: SIGNING_ALG, use: 'sig' },
    rotateAt,
    retiredAt,
  };
  imported.set(row.kid, key);
  return key;
}

/**
 * Creates the next signing key unless another process just did: the advisory lock makes
 * the check and the insert one step across processes. Retired keys are deleted here too.
 */
async function createKeyUnlessAnother(knex: Knex, rotationSeconds: number, tokenSeconds: number): Promise<void> {
  const { privateKey, publicKey } = await generateKeyPair(SIGNING_ALG, { modulusLength: 2048, extractable: true });
  const privateJwk = await exportJWK(privateKey);
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  await knex.transaction(async (trx) => {
    await trx.raw("SELECT pg_advisory_xact_lock(hashtext('auth_signing_key'))");
    const current = await trx('auth_signing_key').where('rotate_at', '>', trx.fn.now()).first('kid');
    if (current) return;
    await trx('auth_signing_key').where('retired_at', '<', trx.fn.now()).delete();
    await trx.raw(
      `INSERT INTO auth_signing_key (kid, alg, private_jwk, public_jwk, rotate_at, retired_at)
       VALUES (?, ?, ?, ?, now() + make_interval(secs => ?), now() + make_interval(secs => ?))`,
      [kid, SIGNING_ALG, JSON.stringify(privateJwk), JSON.stringify(publicJwk), rotationSeconds, rotationSeconds + tokenSeconds + RETIRE_MARGIN_SECONDS]
    );
  });
}
