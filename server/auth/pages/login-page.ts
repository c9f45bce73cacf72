import { html } from './html';
import { layout, requestFields } from './layout';

export interface LoginPageInput {
  requestId: string;
  csrfToken: string;
  clientName: string;
  username?: string;
  error?: string;
}

export function loginPage(input: LoginPageInput): string {
  return layout(
    'Sign in',
    html`<h1>Sign in</h1>
<p><strong>${input.clientName}</strong> asks you to sign in to connect to your health records.</p>
${input.error ? html`<p class="error" role="alert">${input.error}</p>` : ''}
<form method="post" action="/auth/login">
${requestFields(input.requestId, input.csrfToken)}
<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${input.username ?? ''}">
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`
  );
}

export interface TotpPageInput {
  requestId: string;
  csrfToken: string;
  error?: string;
}

/** The second step for a user with a TOTP secret (RFC 6238), after the password. */
export function totpPage(input: TotpPageInput): string {
  return layout(
    'Authentication code',
    html`<h1>Authentication code</h1>
<p>Enter the 6-digit code from your authenticator app.</p>
${input.error ? html`<p class="error" role="alert">${input.error}</p>` : ''}
<form method="post" action="/auth/login/totp">
${requestFields(input.requestId, input.csrfToken)}
<label for="totp">Authentication code</label>
<input type="text" id="totp" name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required>
<button type="submit">Verify</button>
</form>`
  );
}
