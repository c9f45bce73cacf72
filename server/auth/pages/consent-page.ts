import { html } from './html';
import { layout, requestFields } from './layout';

export interface ConsentItem {
  scope: string;
  text: string;
  /** The user may leave it out (a checkbox, checked at first); otherwise it is listed only. */
  optional: boolean;
}

export interface ConsentPageInput {
  requestId: string;
  csrfToken: string;
  clientName: string;
  /** e.g. "Jane Doe (born 1970-01-01)". */
  patientLabel?: string;
  /** Indexed: checkbox `scope_<i>` answers for items[i]. */
  items: ConsentItem[];
  error?: string;
}

export function consentPage(input: ConsentPageInput): string {
  const items = input.items.map((item, i) =>
    item.optional
      ? html`<li><input type="checkbox" id="scope_${i}" name="scope_${i}" value="${item.scope}" checked> <label for="scope_${i}">${item.text}</label> <span class="muted">(${item.scope})</span></li>`
      : html`<li>${item.text} <span class="muted">(${item.scope})</span></li>`
  );
  return layout(
    'Allow access?',
    html`<h1>Allow access?</h1>
<p><strong>${input.clientName}</strong> asks to:</p>
${input.patientLabel ? html`<p>Patient: <strong>${input.patientLabel}</strong></p>` : ''}
${input.error ? html`<p class="error" role="alert">${input.error}</p>` : ''}
<form method="post" action="/auth/consent">
${requestFields(input.requestId, input.csrfToken)}
<ul class="scopes">${items}</ul>
<p class="muted">Untick anything you do not want to share.</p>
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</form>`
  );
}
