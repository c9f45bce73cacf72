import type { Bundle, BundleEntry, Patient, Resource } from '@medplum/fhirtypes';
import { badRequest, issue, outcome } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { normalizeText } from '../search/folded-text';
import { parseSearchRequest, type SearchQuery } from '../search/parse-search-request';
import { assertValidResource } from '../validation/validate-resource';
import { OperationInput } from './operation-parameters';

const MATCH_GRADE = 'http://hl7.org/fhir/StructureDefinition/match-grade';
/** Candidates per search: a person has few records; a common name is narrowed by the birth date. */
const CANDIDATES_PER_QUERY = 50;
const DEFAULT_COUNT = 10;

/** What each kind of agreement adds to a score (at most 1). */
const WEIGHTS = { family: 0.3, given: 0.2, birthDate: 0.3, gender: 0.1, telecom: 0.05, address: 0.05 } as const;
/** A disagreement on birth date or gender (both given, both definite) takes this off, and rules out certain and probable. */
const CONFLICT_PENALTY = 0.3;
const PROBABLE = 0.8;
const POSSIBLE = 0.5;

type Grade = 'certain' | 'probable' | 'possible';

export interface MatchResult {
  score: number;
  grade: Grade | undefined;
}

/**
 * `POST Patient/$match` (R4 patient-operation-match): the patients stored here who may be
 * the person described, each graded (match-grade extension) and scored (search.score):
 *  - **certain**: a shared business identifier (same system and value) and no conflict;
 *  - **probable**: family name, a given name and the full birth date agree (score ≥ 0.8)
 *    and nothing conflicts;
 *  - **possible**: score ≥ 0.5 (family name and birth date, or name and gender …), or a
 *    shared identifier despite a conflict.
 * The score adds family 0.3, given 0.2, birth date 0.3 (a partial date agreeing as far
 * as it goes 0.15), gender 0.1, a phone or email 0.05, an address (postal code and
 * first line) 0.05; a birth date or gender that disagrees takes 0.3 off. Names and
 * addresses are compared case- and accent-insensitively. Candidates come from searches by
 * identifier, family name (with birth date, or given name) and telecom, through the
 * caller's store: patients they may not see are never candidates. `onlyCertainMatches`
 * returns the one certain match, or nothing when there are several (with an
 * OperationOutcome saying so); `count` caps the entries (default 10), best first.
 */
export const patientMatch: FhirHandler = async (req, ctx) => {
  const input = OperationInput.of('match', req.body, {});
  const given = input.resource('resource');
  if (!given || given.resourceType !== 'Patient') throw badRequest('$match: the resource parameter must be a Patient', 'resource');
  const onlyCertain = input.boolean('onlyCertainMatches') ?? false;
  const count = input.positiveInteger('count') ?? DEFAULT_COUNT;
  // "It does have to be a valid instance": structure and data types, not the profile's mandatory elements.
  assertValidResource(given);
  const probe = given as Patient;
  const queries = candidateQueries(probe);
  if (queries.length === 0) throw badRequest('$match: the Patient needs an identifier (system and value), a family name or a phone or email to be matched', 'resource');

  const candidates = new Map<string, Patient & { id: string }>();
  for (const query of queries) {
    const request = parseSearchRequest('Patient', { ...query, _count: String(CANDIDATES_PER_QUERY) }, { strict: true, defaultCount: CANDIDATES_PER_QUERY, maxCount: CANDIDATES_PER_QUERY });
    for (const patient of (await ctx.repo.search(request)).resources as (Patient & { id: string })[]) candidates.set(patient.id, patient);
  }
  let matches = [...candidates.values()]
    .map((patient) => ({ patient, ...matchPatients(probe, patient) }))
    .filter((m): m is typeof m & { grade: Grade } => m.grade !== undefined)
    .sort((a, b) => b.score - a.score || (a.patient.id < b.patient.id ? -1 : 1));
  const entry: BundleEntry[] = [];
  if (onlyCertain) {
    const certain = matches.filter((m) => m.grade === 'certain');
    matches = certain.length === 1 ? certain : [];
    if (certain.length > 1) entry.push({ resource: outcome([issue('information', 'multiple-matches', `${certain.length} patients match with certainty: none is returned with onlyCertainMatches`)]) as Resource, search: { mode: 'outcome' } });
  }
  matches = matches.slice(0, count);
  entry.unshift(
    ...matches.map((m) => ({
      fullUrl: `${ctx.baseUrl}/Patient/${m.patient.id}`,
      resource: m.patient,
      search: { mode: 'match' as const, score: m.score, extension: [{ url: MATCH_GRADE, valueCode: m.grade }] },
    }))
  );
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', total: matches.length, ...(entry.length > 0 ? { entry } : {}) };
  return { status: 200, resource: bundle };
};

/** The searches that find candidates: by each identifier, by family name narrowed by birth date or given name, by each phone or email. */
function candidateQueries(patient: Patient): SearchQuery[] {
  const queries: SearchQuery[] = [];
  for (const identifier of patient.identifier ?? []) {
    if (identifier.system && identifier.value) queries.push({ identifier: `${escape(identifier.system)}|${escape(identifier.value)}` });
  }
  for (const name of patient.name ?? []) {
    if (!name.family) continue;
    if (patient.birthDate) queries.push({ family: escape(name.family), birthdate: patient.birthDate });
    for (const first of (name.given ?? []).slice(0, 1)) queries.push({ family: escape(name.family), given: escape(first) });
    if (!patient.birthDate && (name.given ?? []).length === 0) queries.push({ family: escape(name.family) });
  }
  for (const telecom of patient.telecom ?? []) {
    if (telecom.value && (telecom.system === 'phone' || telecom.system === 'email')) queries.push({ telecom: escape(telecom.value) });
  }
  return queries;
}

/** Search values escape `,` `$` `|` and `\` (search.html#escaping). */
function escape(value: string): string {
  return value.replace(/[\\,$|]/g, (c) => `\\${c}`);
}

/** How far `candidate` is the person `probe` describes (see patientMatch). */
export function matchPatients(probe: Patient, candidate: Patient): MatchResult {
  const identifier = (probe.identifier ?? []).some((a) => a.system && a.value && (candidate.identifier ?? []).some((b) => b.system === a.system && b.value === a.value));
  const families = (p: Patient) => new Set((p.name ?? []).map((n) => n.family).filter((f): f is string => !!f).map(normalizeText));
  const givens = (p: Patient) => new Set((p.name ?? []).flatMap((n) => n.given ?? []).map(normalizeText));
  let score = 0;
  if (intersects(families(probe), families(candidate))) score += WEIGHTS.family;
  if (intersects(givens(probe), givens(candidate))) score += WEIGHTS.given;
  let conflict = false;
  const birth = compareDates(probe.birthDate, candidate.birthDate);
  if (birth === 'same') score += WEIGHTS.birthDate;
  else if (birth === 'partial') score += WEIGHTS.birthDate / 2;
  else if (birth === 'different') conflict = true;
  const definite = (g: string | undefined) => g === 'male' || g === 'female';
  if (probe.gender && probe.gender === candidate.gender) score += WEIGHTS.gender;
  else if (definite(probe.gender) && definite(candidate.gender)) conflict = true;
  const telecoms = (p: Patient) => new Set((p.telecom ?? []).filter((t) => t.value).map((t) => (t.system === 'phone' ? (t.value as string).replace(/[^\d+]/g, '') : normalizeText(t.value as string))));
  if (intersects(telecoms(probe), telecoms(candidate))) score += WEIGHTS.telecom;
  const addresses = (p: Patient) => new Set((p.address ?? []).filter((a) => a.postalCode && a.line?.[0]).map((a) => `${normalizeText(a.postalCode as string)}|${normalizeText(a.line?.[0] as string)}`));
  if (intersects(addresses(probe), addresses(candidate))) score += WEIGHTS.address;
  if (conflict) score = Math.max(0, score - CONFLICT_PENALTY);
  score = Math.round(score * 100) / 100;

  if (identifier && !conflict) return { score: 1, grade: 'certain' };
  const grade: Grade | undefined = !conflict && score >= PROBABLE ? 'probable' : score >= POSSIBLE || identifier ? 'possible' : undefined;
  return { score: Math.min(score, 1), grade };
}

function intersects(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const value of a) if (b.has(value)) return true;
  return false;
}

/** Birth dates: the same, agreeing as far as the less precise goes, different, or not both known. */
function compareDates(a: string | undefined, b: string | undefined): 'same' | 'partial' | 'different' | undefined {
  if (!a || !b) return undefined;
  if (a === b) return 'same';
  const shorter = Math.min(a.length, b.length);
  return a.slice(0, shorter) === b.slice(0, shorter) ? 'partial' : 'different';
}
