import { html } from './html';
import { layout, requestFields } from './layout';

export interface PickerEncounter {
  id: string;
  /** What it was (type, class), e.g. "Encounter for check up (ambulatory)". */
  label: string;
  /** When, e.g. "2019-03-04 – 2019-03-05". */
  period?: string;
  status?: string;
}

export interface EncounterPickerPageInput {
  requestId: string;
  csrfToken: string;
  clientName: string;
  patientLabel: string;
  encounters: PickerEncounter[];
  /** URLs (same origin, relative) of the neighbouring pages. */
  nextUrl?: string;
  previousUrl?: string;
  error?: string;
}

/** One button per encounter of the patient (latest first), one to go on without; paging links. */
export function encounterPickerPage(input: EncounterPickerPageInput): string {
  const buttons = input.encounters.map(
    (e) =>
      html`<li><button type="submit" name="encounter" value="${e.id}">${e.label}${e.period ? html` <span class="muted">${e.period}</span>` : ''}${e.status ? html` <span class="muted">${e.status}</span>` : ''} <span class="muted">id ${e.id}</span></button></li>`
  );
  return layout(
    'Choose an encounter',
    html`<h1>Choose an encounter</h1>
<p><strong>${input.clientName}</strong> asks to open within one encounter of <strong>${input.patientLabel}</strong>.</p>
${input.error ? html`<p class="error" role="alert">${input.error}</p>` : ''}
<form method="post" action="/auth/encounter-picker">
${requestFields(input.requestId, input.csrfToken)}
${input.encounters.length === 0 ? html`<p>No encounter of this patient is within your reach.</p>` : html`<ul class="scopes patients">${buttons}</ul>`}
<button type="submit" name="encounter" value="" class="secondary">Continue without an encounter</button>
</form>
<p>${input.previousUrl ? html`<a href="${input.previousUrl}">Previous page</a> ` : ''}${input.nextUrl ? html`<a href="${input.nextUrl}">Next page</a>` : ''}</p>`
  );
}
