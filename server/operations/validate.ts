import type { OperationOutcomeIssue, Parameters, Resource } from '@medplum/fhirtypes';
import { badRequest, informational, outcome } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { resourceFromBody } from '../fhir/read-body';
import { validateResource } from '../validation/validate-resource';
import { singleValue as single } from '../fhir/query-value';

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
    profile = params.find((p) => p.name === 'profile')?.valueUri ?? profile;
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
  const issues = [...validateResource(resource), ...profileIssues(resource, profile)];
  if (mode === 'update' && !resource.id) {
    issues.push({ severity: 'error', code: 'required', diagnostics: 'An update needs an id', expression: [`${resourceType}.id`] });
  }
  return {
    status: 200,
    resource: issues.length > 0 ? outcome(issues) : informational('No issues found: the resource is valid'),
  };
};

/**
 * Only the base R4 StructureDefinitions are known here (profiles/ ships none yet). A
 * profile the client asks for by the `profile` parameter cannot be checked: an error,
 * not a silent "valid". One the resource merely claims in meta.profile: a warning, as
 * the HL7 validator gives, since the base checks still ran.
 */
function profileIssues(resource: Resource, requested: string | undefined): OperationOutcomeIssue[] {
  const base = `http://hl7.org/fhir/StructureDefinition/${resource.resourceType}`;
  const known = (url: string): boolean => url.split('|')[0] === base;
  const issues: OperationOutcomeIssue[] = [];
  if (requested !== undefined && !known(requested)) {
    const text = `Profile ${requested} is not known to this server: the resource could not be validated against it`;
    issues.push({ severity: 'error', code: 'not-supported', diagnostics: text, details: { text } });
  }
  for (const [i, url] of (resource.meta?.profile ?? []).entries()) {
    if (known(url) || url === requested) continue;
    const text = `Profile ${url} is not known to this server: checked against the base R4 ${resource.resourceType} definition only`;
    issues.push({ severity: 'warning', code: 'not-supported', diagnostics: text, details: { text }, expression: [`${resource.resourceType}.meta.profile[${i}]`] });
  }
  return issues;
}

function isParameters(value: unknown): value is Parameters {
  return typeof value === 'object' && value !== null && (value as { resourceType?: unknown }).resourceType === 'Parameters';
}

