import type { Coding, OperationOutcomeIssue, Parameters, Resource, StructureDefinition } from '@medplum/fhirtypes';
import { badRequest, informational, issue, outcome } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { resourceFromBody } from '../fhir/read-body';
import { validateResource } from '../validation/validate-resource';
import { singleValue as single } from '../fhir/query-value';
import { vitalSignsProfilesFor } from '../validation/official-profiles';
import { profileProblems, profileUnusableReason, type ProfileResolver } from '../validation/profile-validation';
import type { JsonObject } from '../validation/json-shape';
import { loadProfiles } from './profile-resolution';
import type { ResourceStore } from '../storage/resource-store';

/**
 * https://hl7.org/fhir/R4/resource-operation-validate.html — the answer is always 200
 * with an OperationOutcome; its issues say whether the resource is valid.
 * The body is the resource itself or a Parameters with `resource` (and `mode`).
 */
export const validate: FhirHandler = async (req, ctx) => {
  const resourceType = req.resourceType as string;
  let candidate: unknown = req.body;
  let mode: string | undefined = single(req.query.mode);
  let profile: string | undefined = single(req.query.profile);
  if (isParameters(candidate) && resourceType !== 'Parameters') {
    const params = candidate.parameter ?? [];
    mode = params.find((p) => p.name === 'mode')?.valueCode ?? mode;
    const named = params.find((p) => p.name === 'profile');
    profile = named?.valueUri ?? named?.valueCanonical ?? profile;
    candidate = params.find((p) => p.name === 'resource')?.resource;
  }
  if (mode !== undefined && !['create', 'update', 'delete'].includes(mode)) {
    throw badRequest(`mode must be create, update or delete, got "${mode}"`);
  }
  if (mode === 'delete') {
    if (!req.id) throw badRequest(`mode=delete validates the deletion of one resource: POST ${resourceType}/[id]/$validate`);
    // Nothing stops a delete here but existence; referential checks are not enforced.
    await ctx.repo.read(resourceType, req.id);
    return { status: 200, resource: informational('The resource may be deleted') };
  }
  if (candidate === undefined && req.id) {
    candidate = (await ctx.repo.read(resourceType, req.id)).resource;
  }
  const resource: Resource = resourceFromBody(candidate, resourceType);
  if (req.id && resource.id !== undefined && resource.id !== req.id) {
    throw badRequest(`The resource's id "${resource.id}" does not match the URL's id "${req.id}"`);
  }
  const issues = [...validateResource(resource), ...(await profileIssues(resource, profile, ctx.repo))];
  if (mode === 'update' && !resource.id) {
    issues.push({ severity: 'error', code: 'required', diagnostics: 'An update needs an id', expression: [`${resourceType}.id`] });
  }
  return {
    status: 200,
    resource: issues.length > 0 ? outcome(issues) : informational('No issues found: the resource is valid'),
  };
};

/**
 * The profiles a validation applies (profiling.html, resource-operation-validate.html):
 * the one asked for by `profile` (an error when it is not known here, not a silent
 * "valid"), those the resource claims in meta.profile (a warning when one is not known,
 * as the HL7 validator gives, since the base checks still ran), and for an Observation
 * with a vital sign's LOINC code the R4 vital signs profile for it, which the
 * specification requires (observation-vitalsigns.html). Known means published with R4 or
 * stored here as a StructureDefinition the caller may read.
 */
async function profileIssues(resource: Resource, requested: string | undefined, repo: ResourceStore): Promise<OperationOutcomeIssue[]> {
  const base = `http://hl7.org/fhir/StructureDefinition/${resource.resourceType}`;
  const isBase = (url: string): boolean => url.split('|')[0] === base;
  const claimed = (resource.meta?.profile ?? []).filter((url) => !isBase(url));
  const vitalSigns = resource.resourceType === 'Observation' ? vitalSignsProfilesFor((resource.code?.coding ?? []) as Coding[]) : [];
  const wanted = [...(requested !== undefined && !isBase(requested) ? [requested] : []), ...claimed];
  if (wanted.length === 0 && vitalSigns.length === 0) return [];
  const resolve = await loadProfiles(repo, [...wanted, ...vitalSigns.map((v) => v.profile.url)]);
  const issues: OperationOutcomeIssue[] = [];
  const applied = new Set<string>();
  const apply = (sd: StructureDefinition): void => {
    if (applied.has(sd.url)) return;
    applied.add(sd.url);
    issues.push(...profileProblems(resource as unknown as JsonObject, sd, resolve));
  };
  if (requested !== undefined && !isBase(requested)) {
    const problem = unusable(requested, resolve);
    if (problem) issues.push(issue('error', 'not-supported', `Profile ${requested} cannot be checked: ${problem}`));
    else apply(resolve(requested) as StructureDefinition);
  }
  for (const [i, url] of claimed.entries()) {
    if (url === requested) continue;
    const problem = unusable(url, resolve);
    if (problem) issues.push(issue('warning', 'not-supported', `Profile ${url} is not checked: ${problem}; the base R4 ${resource.resourceType} definition was`, `${resource.resourceType}.meta.profile[${i}]`));
    else apply(resolve(url) as StructureDefinition);
  }
  for (const { profile, coding } of vitalSigns) {
    if (applied.has(profile.url)) continue;
    issues.push(issue('information', 'informational', `Validated against the ${profile.title ?? profile.name} profile (${profile.url}), which R4 requires of an Observation with the code ${coding.system}#${coding.code}`, `${resource.resourceType}.code`));
    apply(profile);
  }
  return issues;
}

/** Why a profile cannot be applied: not known here, not the version asked for, or not a profile with a snapshot. */
function unusable(canonical: string, resolve: ProfileResolver): string | undefined {
  const [, version] = canonical.split('|');
  const sd = resolve(canonical);
  if (!sd) return 'it is not known to this server';
  if (version !== undefined && sd.version !== version) return `this server has version ${sd.version ?? '(none)'}, not ${version}`;
  return profileUnusableReason(sd, resolve);
}

function isParameters(value: unknown): value is Parameters {
  return typeof value === 'object' && value !== null && (value as { resourceType?: unknown }).resourceType === 'Parameters';
}

