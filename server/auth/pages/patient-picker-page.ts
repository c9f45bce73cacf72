import { html } from './html';
import { layout, requestFields } from './layout';

export interface PickerPatient {
  id: string;
  name: string;
  birthDate?: string;
}

export interface PatientPickerPageInput {
  requestId: string;
  csrfToken: string;
  clientName: string;
  nameFilter: string;
  patients: PickerPatient[];
  /** URLs (same origin, relative) of the neighbouring pages. */
  nextUrl?: string;
  previousUrl?: string;
  error?: string;
}

/** One button per patient (each submits that patient), a name filter and paging links. */
export function patientPickerPage(input: PatientPickerPageInput): string {
  const buttons = input.patients.map(
    (p) =>
      html`<li><button type="submit" name="patient" value="${p.id}">${p.name}${p.birthDate ? html` <span class="muted">born ${p.birthDate}</span>` : ''} <span class="muted">id ${p.id}</span></button></li>`
  );
  return layout(
    'Choose a patient',
    html`<h1>Choose a patient</h1>
<p><strong>${input.clientName}</strong> will open with the patient you choose.</p>
${input.error ? html`<p class="error" role="alert">${input.error}</p>` : ''}
<form method="get" action="/auth/patient-picker">
<label for="name">Name</label>
<input type="search" id="name" name="name" value="${input.nameFilter}">
<button type="submit" class="secondary">Search</button>
</form>
<form method="post" action="/auth/patient-picker">
${requestFields(input.requestId, input.csrfToken)}
${input.patients.length === 0 ? html`<p>No patient matches.</p>` : html`<ul class="scopes patients">${buttons}</ul>`}
</form>
<p>${input.previousUrl ? html`<a href="${input.previousUrl}">Previous page</a> ` : ''}${input.nextUrl ? html`<a href="${input.nextUrl}">Next page</a>` : ''}</p>`
  );
}
