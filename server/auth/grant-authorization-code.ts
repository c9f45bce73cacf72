import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { invalidGrant, invalidRequest, type AuthContext, type AuthRequest, type AuthResponse } from './auth-exchange';
import type { AuthenticatedClient } from './client-authentication';
import { revokeRefreshFamily } from './refresh-family';
import { revokedTokensFor } from './revoked-tokens';
import { hashToken } from './secret-hash';
import { tokenResponse } from './token-response';
import { findUserById } from './user-store';

interface CodeRow {
  code_hash: string;
  client_id: string;
  user_id: string;
  redirect_uri: string;
  scope: string;
  code_challenge: string | null;
  code_challenge_method: string | null;
  nonce: string | null;
  patient: string | null;
  encounter: string | null;
  need_patient_banner: boolean;
  expires_at: Date;
  used_at: Date | null;
  family_id: string | null;
}

/** RFC 7636 §4.1: 43 to 128 unreserved characters. */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

/**
 * authorization_code (RFC 6749 §4.1.3, RFC 7636, SMART App Launch): redeems a row that
 * /auth/authorize wrote. Each check is a step; the code is consumed only when all pass,
 * in one UPDATE ... WHERE used_at IS NULL, so two concurrent redemptions cannot both win.
 */
export async function authorizationCodeGrant(req: AuthRequest, context: AuthContext, { client, method }: AuthenticatedClient): Promise<AuthResponse> {
  const { code, redirect_uri: redirectUri, code_verifier: verifier } = req.form;
  if (!code) throw invalidRequest('code is required');
  const row: CodeRow | undefined = await context.knex('auth_code').where({ code_hash: hashToken(code) }).first();
  if (!row || row.client_id !== client.id) throw invalidGrant('Unknown authorization code');
  if (row.used_at) {
    await revokeTokensOfCode(context, row);
    throw invalidGrant('The authorization code was already used; the tokens issued for it are revoked');
  }
  if (row.expires_at.getTime() <= Date.now()) throw invalidGrant('The authorization code expired');
  if (redirectUri !== row.redirect_uri) throw invalidGrant('redirect_uri differs from the authorization request');
  checkPkce(row, verifier, method === 'none');

  const familyId = randomUUID();
  const consumed = await context.knex('auth_code')
    .where({ code_hash: row.code_hash })
    .whereNull('used_at')
    .update({ used_at: context.knex.fn.now(), family_id: familyId })
    .returning('code_hash');
  if (consumed.length === 0) {
    // Another request redeemed it between our read and this update.
    const winner: CodeRow | undefined = await context.knex('auth_code').where({ code_hash: row.code_hash }).first();
    if (winner) await revokeTokensOfCode(context, winner);
    throw invalidGrant('The authorization code was already used; the tokens issued for it are revoked');
  }
  const user = await findUserById(context.knex, row.user_id);
  if (!user) throw invalidGrant('The user of this authorization code no longer exists');
  return tokenResponse(context, {
    clientId: client.id,
    user,
    scope: row.scope,
    patient: row.patient ?? undefined,
    encounter: row.encounter ?? undefined,
    needPatientBanner: row.need_patient_banner,
    nonce: row.nonce ?? undefined,
    familyId,
    // The first access token's jti is the family id, so a replay of the code can revoke it too.
    accessTokenJti: familyId,
    launch: true,
  });
}

/**
 * RFC 7636 §4.6 with S256 only ('plain' would hand the verifier to whoever saw the
 * authorization request). Public clients must have used PKCE (SMART App Launch 2.x).
 */
function checkPkce(row: CodeRow, verifier: string | undefined, publicClient: boolean): void {
  if (!row.code_challenge) {
    if (publicClient) throw invalidGrant('Public clients must use PKCE (S256)');
    if (verifier !== undefined) throw invalidGrant('code_verifier sent but the authorization request had no code_challenge');
    return;
  }
  if (row.code_challenge_method !== 'S256') throw invalidGrant('Only the S256 code_challenge_method is supported');
  if (verifier === undefined) throw invalidGrant('code_verifier is required');
  if (!VERIFIER.test(verifier)) throw invalidGrant('code_verifier is malformed');
  const computed = Buffer.from(createHash('sha256').update(verifier).digest('base64url'));
  const expected = Buffer.from(row.code_challenge);
  if (computed.length !== expected.length || !timingSafeEqual(computed, expected)) throw invalidGrant('code_verifier does not match the code_challenge');
}

/** RFC 6749 §4.1.2: a code used twice revokes what it yielded (the refresh family and its first access token). */
async function revokeTokensOfCode(context: AuthContext, row: CodeRow): Promise<void> {
  if (!row.family_id) return;
  await revokeRefreshFamily(context, row.family_id);
  const exp = Math.ceil((row.used_at ?? new Date()).getTime() / 1000) + context.config.auth.accessTokenSeconds + 60;
  await revokedTokensFor(context).revoke(row.family_id, exp);
}
