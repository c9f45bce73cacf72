import type { Parameters, ParametersParameter, Patient, Resource } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { parseDateSearchValue } from '../search/date-search-value';
import type { SearchQuery } from '../search/parse-search-request';
import { escapeSearchValue } from '../search/search-value-escaping';
import { searchEveryPage } from '../storage/search-every-page';
import { NO_STORE, signHealthCard } from './health-card';
import { healthCardBundle } from './health-card-bundle';

/**
 * `POST Patient/[id]/$health-cards-issue` (SMART Health Cards and Links IG,
 * OperationDefinition patient-i-health-cards-issue): a Health Wallet asks for the
 * patient's cards of a kind, and gets each as a JWS signed with the server's issuer key
 * (the one `$emergency-card` uses), with `resourceLink`s from each bundled resource to
 * the resource hosted here.
 *
 * - `credentialType` (1..*): `Immunization` (or `https://smarthealth.cards#immunization`)
 *   gives one card of the completed Immunizations; `Observation` (or `#laboratory`) one
 *   card of the final laboratory results. Several types ask for cards holding all of them
 *   (AND); immunizations and results are never on one card (the spec's granular sharing),
 *   so that, or a type this server does not issue, is answered with no card.
 * - `credentialValueSet` (0..*, AND): only resources whose vaccineCode (Observation: code)
 *   is in each value set, through the search's `:in` (a ValueSet stored here or R4's).
 * - `includeIdentityClaim` (0..*): which of the Patient's elements the card names
 *   (`Patient.name`, `Patient.birthDate`, …); by default name and birth date.
 * - `_since`: only resources of care dated at or after it.
 *
 * Read through the caller's confined store: what the caller may not see is not on a card.
 */

interface CardKind {
  resourceType: 'Immunization' | 'Observation';
  /** The credential type the card carries beside health-card. */
  vcType: string;
  /** The search parameter holding the coded concept value sets filter on. */
  codeParameter: string;
  query: SearchQuery;
}

const KINDS: Record<string, CardKind> = {
  Immunization: { resourceType: 'Immunization', vcType: 'https://smarthealth.cards#immunization', codeParameter: 'vaccine-code', query: { status: 'completed', _sort: 'date' } },
  Observation: {
    resourceType: 'Observation',
    vcType: 'https://smarthealth.cards#laboratory',
    codeParameter: 'code',
    query: { category: 'http://terminology.hl7.org/CodeSystem/observation-category|laboratory', status: 'final,amended,corrected', _sort: 'date' },
  },
};

/** The first release's credential types, read as the resource types they stand for (as the IG asks); health-card is every card's. */
const LEGACY_TYPES: Record<string, string | null> = {
  'https://smarthealth.cards#immunization': 'Immunization',
  'https://smarthealth.cards#laboratory': 'Observation',
  'https://smarthealth.cards#health-card': null,
};

/** The Patient elements a card may name on request; the default is the first two (the vaccination IG's identity claims). */
const IDENTITY_CLAIMS = ['name', 'birthDate', 'gender', 'identifier', 'telecom', 'address'];
const DEFAULT_CLAIMS = ['name', 'birthDate'];

export const healthCardsIssue: FhirHandler = async (req, ctx) => {
  if (!ctx.healthCardKey) throw new Error('$health-cards-issue: this FHIR context has no health card issuer key');
  const input = parseInput(req.body);
  // 404 for an unknown patient, 410 for a deleted one, 403 for one the caller may not see.
  const patient = (await ctx.repo.read('Patient', req.id as string)).resource as Patient & { id: string };
  const kinds = new Set(input.types.map((t) => (t in LEGACY_TYPES ? LEGACY_TYPES[t] : t)).filter((t): t is string => t !== null));
  const kind = kinds.size === 1 ? KINDS[[...kinds][0]] : undefined;
  const none: Parameters = { resourceType: 'Parameters' };
  if (!kind) return { status: 200, resource: none, headers: NO_STORE };

  const query: SearchQuery = { ...kind.query, patient: `Patient/${patient.id}` };
  // Each value set its own parameter (AND); a comma in a URL is escaped, not an OR (search.html#escaping).
  if (input.valueSets.length > 0) query[`${kind.codeParameter}:in`] = input.valueSets.map(escapeSearchValue);
  if (input.since) query.date = `ge${input.since}`;
  const resources = await searchEveryPage<Resource>(ctx.repo, kind.resourceType, query);
  if (resources.length === 0) return { status: 200, resource: none, headers: NO_STORE };

  const bundled = [patient, ...resources];
  const bundle = healthCardBundle(bundled, ctx.baseUrl, input.claims);
  const jws = await signHealthCard(ctx.healthCardKey, ctx.config.publicUrl.replace(/\/+$/, ''), bundle, { patientId: patient.id, types: [kind.vcType] });
  const parameter: ParametersParameter[] = [
    { name: 'verifiableCredential', valueString: jws },
    ...bundled.map((resource, i) => ({
      name: 'resourceLink',
      part: [
        { name: 'vcIndex', valueInteger: 0 },
        { name: 'bundledResource', valueUri: `resource:${i}` },
        { name: 'hostedResource', valueUri: `${ctx.baseUrl}/${resource.resourceType}/${resource.id}` },
      ],
    })),
  ];
  return { status: 200, resource: { resourceType: 'Parameters', parameter }, headers: NO_STORE };
};

interface Input {
  types: string[];
  valueSets: string[];
  claims: string[];
  since?: string;
}

function parseInput(body: unknown): Input {
  const parameters = body as Parameters | undefined;
  if (!parameters || parameters.resourceType !== 'Parameters') throw badRequest('$health-cards-issue takes a Parameters resource');
  const input: Input = { types: [], valueSets: [], claims: [] };
  for (const p of parameters.parameter ?? []) {
    const value = p.valueUri ?? p.valueString ?? p.valueCode ?? p.valueCanonical ?? p.valueDateTime ?? p.valueDate ?? p.valueInstant;
    if (typeof value !== 'string') throw badRequest(`Parameter ${p.name ?? '(no name)'} needs a string value`, 'Parameters.parameter');
    switch (p.name) {
      case 'credentialType':
        input.types.push(value);
        break;
      case 'credentialValueSet':
        input.valueSets.push(value);
        break;
      case 'includeIdentityClaim': {
        const element = value.replace(/^Patient\./, '');
        if (!IDENTITY_CLAIMS.includes(element)) throw badRequest(`includeIdentityClaim: ${value} is not one of ${IDENTITY_CLAIMS.map((e) => `Patient.${e}`).join(', ')}`, 'includeIdentityClaim');
        input.claims.push(element);
        break;
      }
      case '_since':
        // Malformed: a 400, as a search's date is.
        parseDateSearchValue('_since', `ge${value}`);
        input.since = value;
        break;
      default:
        throw badRequest(`Unknown parameter of $health-cards-issue: ${p.name}`, 'Parameters.parameter');
    }
  }
  if (input.types.length === 0) throw badRequest('credentialType is required (e.g. Immunization)', 'credentialType');
  if (input.claims.length === 0) input.claims = DEFAULT_CLAIMS;
  return input;
}
