import type { Coding, OperationOutcomeIssue, StructureDefinition } from '@medplum/fhirtypes';
import { isJsonObject, type JsonObject } from './json-shape';
import { resourcesWithin } from './nested-resources';
import { officialProfile, vitalSignsProfilesFor } from './official-profiles';
import { canonicalUnusableReason, ProfilesOfOneResource, type ProfileResolver } from './profile-validation';

/**
 * The issues of the profiles a resource, and each resource inside it (contained, Bundle
 * entries), claims in meta.profile that `resolve` knows (by
 * default those R4 publishes: vital signs, lipid profiles, shareable value sets …);
 * claimed profiles not known, or without a snapshot, are not checked. With `vitalSigns`,
 * also the vital signs profile that R4 requires of an Observation by its LOINC code
 * (observation-vitalsigns.html), as HL7's validator applies it.
 */
export function claimedProfileIssues(resource: unknown, options: { vitalSigns: boolean; resolve?: ProfileResolver }): OperationOutcomeIssue[] {
  if (!isJsonObject(resource)) return [];
  const issues: OperationOutcomeIssue[] = [];
  for (const inner of resourcesWithin(resource, String(resource.resourceType))) issues.push(...ownClaimIssues(inner.resource, inner.path, options));
  return issues;
}

function ownClaimIssues(resource: JsonObject, path: string, options: { vitalSigns: boolean; resolve?: ProfileResolver }): OperationOutcomeIssue[] {
  const resolve = options.resolve ?? officialProfile;
  const profiles = new ProfilesOfOneResource(resource, path, resolve);
  for (const url of claimedUrls(resource)) {
    if (!canonicalUnusableReason(url, resolve)) profiles.apply(resolve(url) as StructureDefinition);
  }
  if (options.vitalSigns) for (const { profile } of vitalSignsOf(resource)) profiles.apply(profile);
  return profiles.issues;
}

/** The profiles a resource claims in meta.profile (its strings: a malformed resource is not this check's to report). */
export function claimedUrls(resource: JsonObject): string[] {
  const meta = resource.meta;
  return isJsonObject(meta) && Array.isArray(meta.profile) ? meta.profile.filter((u): u is string => typeof u === 'string') : [];
}

/** For an Observation, R4's vital signs profiles its codes call for (observation-vitalsigns.html). */
export function vitalSignsOf(resource: JsonObject): ReturnType<typeof vitalSignsProfilesFor> {
  if (resource.resourceType !== 'Observation') return [];
  const code = resource.code;
  return vitalSignsProfilesFor(isJsonObject(code) && Array.isArray(code.coding) ? (code.coding.filter(isJsonObject) as Coding[]) : []);
}
