import { randomUUID } from 'node:crypto';
import type { CodeableConcept, Composition, CompositionSection, Device, Patient, Resource } from '@medplum/fhirtypes';
import { badRequest, notFound } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { parseSearchRequest, type SearchQuery } from '../search/parse-search-request';
import type { ResourceStore } from '../storage/resource-store';
import { documentBundle } from './composition-document';
import { latestPerCode, notInError } from './critical-summary';
import { OperationInput } from './operation-parameters';

const LOINC = 'http://loinc.org';
/** The IPS's own Bundle profile: the only kind of summary this server makes. */
const IPS_BUNDLE_PROFILE = 'http://hl7.org/fhir/uv/ips/StructureDefinition/Bundle-uv-ips';
const MAX_PER_SECTION = 200;

interface SectionRule {
  title: string;
  /** LOINC section code (IPS). */
  code: string;
  display: string;
  /** The IPS's required sections are present even when empty, with an emptyReason. */
  required: boolean;
  /** Searches of the patient's data, `patient` added; their matches (not in error) are the entries. */
  queries: [string, SearchQuery][];
  /** Keep the first of each code (sorted newest first): the latest value of each measurement. */
  latestPerCode?: boolean;
}

/**
 * The sections, in the IPS's order (International Patient Summary, composition sections
 * and their LOINC codes): problems, allergies and medications are required; the rest
 * appear when the patient has such data.
 */
const SECTIONS: readonly SectionRule[] = [
  { title: 'Active Problems', code: '11450-4', display: 'Problem list - Reported', required: true, queries: [['Condition', { 'clinical-status': 'active,recurrence,relapse' }]] },
  { title: 'Allergies and Intolerances', code: '48765-2', display: 'Allergies and adverse reactions Document', required: true, queries: [['AllergyIntolerance', {}]] },
  {
    title: 'Medication Summary',
    code: '10160-0',
    display: 'History of Medication use Narrative',
    required: true,
    queries: [
      ['MedicationStatement', { status: 'active,intended,on-hold' }],
      ['MedicationRequest', { status: 'active,on-hold' }],
    ],
  },
  { title: 'Immunizations', code: '11369-6', display: 'History of Immunization Narrative', required: false, queries: [['Immunization', { _sort: '-date' }]] },
  { title: 'History of Procedures', code: '47519-4', display: 'History of Procedures Document', required: false, queries: [['Procedure', { _sort: '-date' }]] },
  { title: 'Medical Devices', code: '46264-8', display: 'History of medical device use', required: false, queries: [['DeviceUseStatement', {}]] },
  { title: 'Diagnostic Results', code: '30954-2', display: 'Relevant diagnostic tests/laboratory data Narrative', required: false, queries: [['Observation', { category: 'laboratory', _sort: '-date' }]], latestPerCode: true },
  { title: 'Vital Signs', code: '8716-3', display: 'Vital signs', required: false, queries: [['Observation', { category: 'vital-signs', _sort: '-date' }]], latestPerCode: true },
  { title: 'Past History of Illness', code: '11348-0', display: 'History of Past illness Narrative', required: false, queries: [['Condition', { 'clinical-status': 'inactive,remission,resolved' }]] },
  {
    title: 'Advance Directives',
    code: '42348-3',
    display: 'Advance directives',
    required: false,
    queries: [['Consent', { status: 'active', category: `http://terminology.hl7.org/CodeSystem/consentcategorycodes|acd,http://terminology.hl7.org/CodeSystem/consentcategorycodes|dnr,http://terminology.hl7.org/CodeSystem/consentcategorycodes|polst,${LOINC}|75320-2,${LOINC}|42348-3` }]],
  },
];

/**
 * `Patient/[id]/$summary` and `Patient/$summary?identifier=system|value`: the patient's
 * summary as a `document` Bundle shaped as the International Patient Summary (HL7 IPS,
 * OperationDefinition `summary`): a Composition (LOINC 60591-5, Patient summary
 * Document) made at the call, authored by this server (a Device in the Bundle), with
 * the IPS sections (SECTIONS), each with a narrative of its entries; a required section
 * without data says so (`emptyReason` nilknown). Then, as `$document` does, every
 * resource those refer to. Read through the caller's store: what they may not read is
 * not in it. Not stored: it is made anew at each call.
 */
export const patientSummary: FhirHandler = async (req, ctx) => {
  const input = OperationInput.of('summary', req.body, req.query);
  const profile = input.string('profile');
  if (profile !== undefined && profile !== IPS_BUNDLE_PROFILE) throw badRequest(`$summary: this server makes summaries as ${IPS_BUNDLE_PROFILE} only, not ${profile}`, 'profile');
  if (input.string('graph') !== undefined) throw badRequest('$summary: the graph parameter (a GraphDefinition) is not supported by this server', 'graph');
  if (req.id !== undefined && input.string('identifier') !== undefined) throw badRequest('$summary: the identifier parameter may not be used on a Patient instance', 'identifier');
  const patient = req.id !== undefined ? ((await ctx.repo.read('Patient', req.id)).resource as Patient & { id: string }) : await patientByIdentifier(ctx.repo, input.identifierToken('identifier'));
  const subject = `Patient/${patient.id}`;
  // The Composition's fullUrl is a urn:uuid: a relative reference in it would resolve nowhere (bundle.html#references), so its references are absolute, as its entries' fullUrls are.
  const subjectUrl = `${ctx.baseUrl}/${subject}`;

  const sections: CompositionSection[] = [];
  for (const rule of SECTIONS) {
    let entries: Resource[] = [];
    for (const [type, query] of rule.queries) {
      const request = parseSearchRequest(type, { ...query, patient: subject, _count: String(MAX_PER_SECTION) }, { strict: true, defaultCount: MAX_PER_SECTION, maxCount: MAX_PER_SECTION });
      entries.push(...(await ctx.repo.search(request)).resources.filter(notInError));
    }
    if (rule.latestPerCode) entries = latestPerCode(entries);
    if (entries.length === 0 && !rule.required) continue;
    sections.push({
      title: rule.title,
      code: { coding: [{ system: LOINC, code: rule.code, display: rule.display }] },
      text: { status: 'generated', div: narrative(entries) },
      ...(entries.length > 0
        ? { entry: entries.map((r) => ({ reference: `${ctx.baseUrl}/${r.resourceType}/${r.id}` })) }
        : { emptyReason: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/list-empty-reason', code: 'nilknown', display: 'Nil Known' }] } }),
    });
  }

  const now = new Date().toISOString();
  const deviceUrl = `urn:uuid:${randomUUID()}`;
  const device: Device = {
    resourceType: 'Device',
    deviceName: [{ name: 'fhir-server patient summary', type: 'manufacturer-name' }],
    type: { text: 'FHIR server generating patient summaries' },
  };
  const composition: Composition = {
    resourceType: 'Composition',
    status: 'final',
    type: { coding: [{ system: LOINC, code: '60591-5', display: 'Patient summary Document' }] },
    subject: { reference: subjectUrl },
    date: now,
    author: [{ reference: deviceUrl }],
    title: `Patient Summary as of ${now.slice(0, 10)}`,
    confidentiality: 'N',
    section: sections,
  };
  // An IPS holds one Patient and one Composition (Bundle-uv-ips): other patients (Patient.link) and other Compositions are not brought in.
  const document = await documentBundle(ctx.repo, ctx.baseUrl, { fullUrl: `urn:uuid:${randomUUID()}`, resource: composition }, [{ fullUrl: deviceUrl, resource: device }], {
    exclude: (r) => r.type === 'Composition' || (r.type === 'Patient' && r.key !== subject),
  });
  return { status: 200, resource: document, audit: { entities: [subject] } };
};

async function patientByIdentifier(store: ResourceStore, token: string | undefined): Promise<Patient & { id: string }> {
  if (token === undefined) throw badRequest('$summary: which patient? Call it on Patient/[id] or give the identifier parameter (system|value)', 'identifier');
  const request = parseSearchRequest('Patient', { identifier: token, _count: '2' }, { strict: true, defaultCount: 2, maxCount: 2 });
  const found = (await store.search(request)).resources as (Patient & { id: string })[];
  if (found.length === 0) throw notFound(`$summary: no patient with identifier ${token}`);
  if (found.length > 1) throw badRequest(`$summary: more than one patient has identifier ${token}`, 'identifier');
  return found[0];
}

/** A section's narrative: one line per entry, what it is and when. */
function narrative(entries: readonly Resource[]): string {
  if (entries.length === 0) return '<div xmlns="http://www.w3.org/1999/xhtml"><p>No information available.</p></div>';
  const items = entries.map((r) => `<li>${escapeXml(describe(r))}</li>`).join('');
  return `<div xmlns="http://www.w3.org/1999/xhtml"><ul>${items}</ul></div>`;
}

function describe(resource: Resource): string {
  const r = resource as Record<string, any>;
  const concept: CodeableConcept | undefined = r.code ?? r.medicationCodeableConcept ?? r.vaccineCode ?? r.category?.[0];
  const what = concept?.text ?? concept?.coding?.find((c) => c.display)?.display ?? concept?.coding?.[0]?.code ?? r.medicationReference?.display ?? resource.resourceType;
  const value = r.valueQuantity ? ` ${r.valueQuantity.value ?? ''} ${r.valueQuantity.unit ?? r.valueQuantity.code ?? ''}`.trimEnd() : r.valueString ? ` ${r.valueString}` : r.valueCodeableConcept ? ` ${r.valueCodeableConcept.text ?? r.valueCodeableConcept.coding?.[0]?.display ?? ''}` : '';
  const when = r.effectiveDateTime ?? r.effectivePeriod?.start ?? r.occurrenceDateTime ?? r.performedDateTime ?? r.performedPeriod?.start ?? r.onsetDateTime ?? r.recordedDate ?? r.authoredOn ?? r.dateAsserted ?? r.dateTime;
  const status = r.status ?? r.clinicalStatus?.coding?.[0]?.code;
  return `${what}${value}${when ? ` (${String(when).slice(0, 10)})` : ''}${status ? ` [${status}]` : ''}`;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
