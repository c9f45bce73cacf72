import type { AuthContext, AuthRequest, AuthResponse } from './auth-exchange';
import { checkPassword, isLocked, recordLoginFailure, recordLoginSuccess } from './login-lockout';
import { loginPage, totpPage } from './pages/login-page';
import { pendingPage, pendingFromForm, seeOther, updatePending, type PendingAuthorization } from './pending-authorization';
import { verifyTotp } from './totp';
import { findUserById } from './user-store';

/** One message for every refusal, so that it tells nothing about which usernames exist or are locked. */
const LOGIN_REFUSED = 'The username or password is not correct, or the account is locked for a while after too many attempts.';
const TOTP_REFUSED = 'The code is not correct, or the account is locked for a while after too many attempts.';

/** Where a signed-in user goes next: consent (which first sends to the patient picker when a patient is still to choose). */
const AFTER_LOGIN = '/auth/consent';

/** POST /auth/login: username and password; then the TOTP page when the user has a second factor. */
export async function login(req: AuthRequest, ctx: AuthContext): Promise<AuthResponse> {
  const pending = await pendingFromForm(req, ctx);
  const username = req.form.username ?? '';
  const user = await checkPassword(ctx.knex, ctx.config.auth, username, req.form.password ?? '');
  if (!user) {
    return pendingPage(pending, loginPage({ requestId: pending.id, csrfToken: pending.csrfToken, clientName: pending.params.clientName, username, error: LOGIN_REFUSED }));
  }
  if (user.totpSecret) {
    await updatePending(ctx.knex, pending, { progress: { ...pending.progress, totpUserId: user.id } });
    return pendingPage(pending, totpPage({ requestId: pending.id, csrfToken: pending.csrfToken }));
  }
  return signedIn(ctx, pending, user.id);
}

/** POST /auth/login/totp: the code of the user whose password was accepted on this pending request. */
export async function loginTotp(req: AuthRequest, ctx: AuthContext): Promise<AuthResponse> {
  const pending = await pendingFromForm(req, ctx);
  const userId = pending.progress.totpUserId;
  const user = userId ? await findUserById(ctx.knex, userId) : undefined;
  if (!user?.totpSecret) {
    // No password step passed on this request: back to the start of the login.
    return pendingPage(pending, loginPage({ requestId: pending.id, csrfToken: pending.csrfToken, clientName: pending.params.clientName }));
  }
  const refused = (): AuthResponse => pendingPage(pending, totpPage({ requestId: pending.id, csrfToken: pending.csrfToken, error: TOTP_REFUSED }));
  if (isLocked(user)) return refused();
  if (!verifyTotp(user.totpSecret, req.form.totp ?? '')) {
    // Guessing codes counts like guessing passwords.
    await recordLoginFailure(ctx.knex, ctx.config.auth, user.id);
    return refused();
  }
  return signedIn(ctx, pending, user.id);
}

async function signedIn(ctx: AuthContext, pending: PendingAuthorization, userId: string): Promise<AuthResponse> {
  await recordLoginSuccess(ctx.knex, userId);
  await updatePending(ctx.knex, pending, { userId, progress: { ...pending.progress, totpUserId: undefined } });
  return seeOther(AFTER_LOGIN);
}
