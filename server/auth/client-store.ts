import type { Knex } from 'knex';
import type { JSONWebKeySet } from 'jose';
import { hashSecret } from './secret-hash';

/** A registered OAuth client (SMART app, backend service, confidential client). */
export interface OAuthClient {
  id: string;
  name?: string;
  /** argon2id hash of the client secret (client_secret_basic / client_secret_post). */
  secretHash?: string;
  /** A public client (browser app): no secret, PKCE S256 required. */
  public: boolean;
  /** Registered keys for private_key_jwt (SMART Backend Services), inline ... */
  jwks?: JSONWebKeySet;
  /** ... or fetched from this URL. */
  jwksUrl?: string;
  redirectUris: string[];
  /** The scopes it may ever be granted, space-separated. */
  scope: string;
}

export interface NewClient {
  id: string;
  name?: string;
  secret?: string;
  public?: boolean;
  jwks?: JSONWebKeySet;
  jwksUrl?: string;
  redirectUris?: string[];
  scope: string;
}

interface ClientRow {
  id: string;
  name: string | null;
  secret_hash: string | null;
  public: boolean;
  jwks: JSONWebKeySet | null;
  jwks_url: string | null;
  redirect_uris: string[];
  scope: string;
}

function toClient(row: ClientRow): OAuthClient {
  return {
    id: row.id,
    name: row.name ?? undefined,
    secretHash: row.secret_hash ?? undefined,
    public: row.public,
    jwks: row.jwks ?? undefined,
    jwksUrl: row.jwks_url ?? undefined,
    redirectUris: row.redirect_uris,
    scope: row.scope,
  };
}

export async function findClient(knex: Knex, id: string): Promise<OAuthClient | undefined> {
  const row: ClientRow | undefined = await knex('auth_client').where({ id }).first();
  return row ? toClient(row) : undefined;
}

/**
 * Registers a client, or replaces the registration of the same id (the CLI's `client
 * add` is idempotent, so that a deployment script can run it again).
 */
export async function saveClient(knex: Knex, client: NewClient): Promise<OAuthClient> {
  const row = {
    id: client.id,
    name: client.name ?? null,
    secret_hash: client.secret ? await hashSecret(client.secret) : null,
    public: client.public ?? false,
    jwks: client.jwks ? JSON.stringify(client.jwks) : null,
    jwks_url: client.jwksUrl ?? null,
    redirect_uris: client.redirectUris ?? [],
    scope: client.scope,
  };
  const [saved]: ClientRow[] = await knex('auth_client').insert(row).onConflict('id').merge().returning('*');
  return toClient(saved);
}
