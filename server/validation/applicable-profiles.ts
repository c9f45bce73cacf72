import type { OperationOutcomeIssue, Resource, StructureDefinition } from '@medplum/fhirtypes';
import { issue } from '../core/outcome';
import type { JsonObject } from './json-shape';
import { claimedUrls, vitalSignsOf } from './claimed-profiles';
import { resourcesWithin } from './nested-resources';
import { r4DefinitionUrl } from './official-profiles';
import { canonicalUnusableReason, profileProblems, ProfilesOfOneResource, type ProfileResolver } from './profile-validation';

/** The canonicals a validation of `resource` needs: the one asked for, those it and the resources inside it claim, and R4's vital signs profiles for their codes. */
export function applicableProfileUrls(resource: Resource, requested: string | undefined): string[] {
  const urls = requested !== undefined ? [requested] : [];
  for (const inner of resourcesWithin(resource as unknown as JsonObject, resource.resourceType)) {
    const base = r4DefinitionUrl(String(inner.resource.resourceType));
    urls.push(...claimedUrls(inner.resource).filter((url) => url.split('|')[0] !== base));
    urls.push(...vitalSignsOf(inner.resource).map((v) => v.profile.url));
  }
  return urls.filter((url) => url.split('|')[0] !== r4DefinitionUrl(resource.resourceType));
}

/**
 * What a validation ($validate, `cli validate`) reports beyond the base definitions
 * (profiling.html, resource-operation-validate.html): the profile asked for (an error
 * when it cannot be checked, not a silent "valid"), those the resource and the resources
 * inside it (contained, Bundle entries) claim in meta.profile (a warning when one cannot
 * be, as the HL7 validator gives, since the base checks still ran), and for an
 * Observation with a vital sign's code the R4 vital signs profile for it, which the
 * specification requires (observation-vitalsigns.html). `resolve` knows the profiles
 * (those applicableProfileUrls named, loaded beforehand).
 */
export function applicableProfileIssues(resource: Resource, requested: string | undefined, resolve: ProfileResolver): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  if (requested !== undefined && requested.split('|')[0] !== r4DefinitionUrl(resource.resourceType)) {
    const problem = canonicalUnusableReason(requested, resolve);
    if (problem) issues.push(issue('error', 'not-supported', `Profile ${requested} cannot be checked: ${problem}`));
    else issues.push(...profileProblems(resource as unknown as JsonObject, resolve(requested) as StructureDefinition, resolve));
  }
  for (const { resource: inner, path } of resourcesWithin(resource as unknown as JsonObject, resource.resourceType)) {
    issues.push(...ownProfileIssues(inner, path, path === resource.resourceType ? requested : undefined, resolve));
  }
  return issues;
}

/** The profiles one resource claims, and the vital signs profile its code requires (those not asked for already). */
function ownProfileIssues(resource: JsonObject, path: string, requested: string | undefined, resolve: ProfileResolver): OperationOutcomeIssue[] {
  const base = r4DefinitionUrl(String(resource.resourceType));
  const issues: OperationOutcomeIssue[] = [];
  const profiles = new ProfilesOfOneResource(resource, path, resolve, issues);
  // The profile asked for was checked by the caller.
  if (requested !== undefined) profiles.skip(resolve(requested)?.url ?? requested);
  for (const [i, url] of claimedUrls(resource).entries()) {
    if (url.split('|')[0] === base || url === requested) continue;
    const problem = canonicalUnusableReason(url, resolve);
    if (problem) issues.push(issue('warning', 'not-supported', `Profile ${url} is not checked: ${problem}; the base R4 ${String(resource.resourceType)} definition was`, `${path}.meta.profile[${i}]`));
    else profiles.apply(resolve(url) as StructureDefinition);
  }
  for (const { profile, coding } of vitalSignsOf(resource)) {
    if (profiles.has(profile.url)) continue;
    issues.push(issue('information', 'informational', `Validated against the ${profile.title ?? profile.name} profile (${profile.url}), which R4 requires of an Observation with the code ${coding.system}#${coding.code}`, `${path}.code`));
    profiles.apply(profile);
  }
  return issues;
}
