import type { OperationOutcomeIssue, Parameters, Resource } from '@medplum/fhirtypes';
import { badRequest, informational, outcome } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { resourceFromBody } from '../fhir/read-body';
import { validateResource } from '../validation/validate-resource';
import { singleValue as single } from '../fhir/query-value';
import { applicableProfileIssues, applicableProfileUrls } from '../validation/applicable-profiles';
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

/** The profiles a validation applies (validation/applicable-profiles.ts): R4's own, and those stored here that the caller may read. */
async function profileIssues(resource: Resource, requested: string | undefined, repo: ResourceStore): Promise<OperationOutcomeIssue[]> {
  const urls = applicableProfileUrls(resource, requested);
  if (urls.length === 0) return [];
  return applicableProfileIssues(resource, requested, await loadProfiles(repo, urls));
}

function isParameters(value: unknown): value is Parameters {
  return typeof value === 'object' && value !== null && (value as { resourceType?: unknown }).resourceType === 'Parameters';
}

