import type { Coding, Meta, Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import { badRequest, methodNotAllowed } from '../core/outcome';
import type { FhirContext, FhirHandler, FhirRequest, FhirResponse } from '../fhir/fhir-request';
import { versionHeaders } from '../fhir/version-headers';
import { parseVersionId } from '../fhir/vread';
import type { ResourceVersion } from '../storage/resource-row';
import { APPEND_ONLY_TYPES } from '../core/append-only';
import type { SearchRequest } from '../search/search-request';
import { resourceTypes } from '../validation/structure-definitions';

/**
 * The R4 meta operations on one resource (https://hl7.org/fhir/R4/resource-operations.html):
 *
 * - `$meta` (GET or POST, also on `_history/[vid]`): the meta of that version;
 * - `$meta-add` / `$meta-delete` (POST, Parameters with `meta`): profiles, tags and security
 *   labels added to, or removed from, the current version or (on `_history/[vid]`) an
 *   older one. Profiles match by URL, tags and labels by system and code (version and
 *   display ignored, as the operation says). As R4 says, no new version is created: the
 *   version's meta changes in place (storage/write-labels.ts: validation, access, search
 *   columns, audit); when it changes nothing, nothing is written.
 *
 * Each answers a Parameters whose `return` is the resulting Meta. `$meta` also runs on a
 * type and on the whole server (metaInUse).
 */
export const metaRead: FhirHandler = async (req, ctx) => {
  const version =
    req.versionId !== undefined
      ? await ctx.repo.vread(req.resourceType as string, req.id as string, parseVersionId(req.versionId))
      : await ctx.repo.read(req.resourceType as string, req.id as string);
  return answer(version, ctx.baseUrl);
};

/**
 * `$meta` at type level (`[type]/$meta`) and system level (`/$meta`), GET or POST: the
 * profiles, tags and security labels in use on the resources of that type, or of every
 * type, that the caller may search (access rules and Consent confine it as a search).
 */
export const metaInUse: FhirHandler = async (req, ctx) => {
  const types = req.resourceType ? [req.resourceType] : resourceTypes;
  const labels = await ctx.repo.labelsInUse(
    types.map((resourceType): SearchRequest => ({ resourceType, filters: [], sort: [], count: 0, offset: 0, total: 'none', warnings: [] }))
  );
  const meta: Meta = {};
  if (labels.profiles.length > 0) meta.profile = labels.profiles;
  if (labels.security.length > 0) meta.security = labels.security;
  if (labels.tags.length > 0) meta.tag = labels.tags;
  const result: Parameters = { resourceType: 'Parameters', parameter: [{ name: 'return', valueMeta: meta }] };
  return { status: 200, resource: result };
};

export const metaAdd: FhirHandler = (req, ctx) => change(req, ctx, 'meta-add');
export const metaDelete: FhirHandler = (req, ctx) => change(req, ctx, 'meta-delete');

async function change(req: FhirRequest, ctx: FhirContext, operation: 'meta-add' | 'meta-delete'): Promise<FhirResponse> {
  const type = req.resourceType as string;
  if (APPEND_ONLY_TYPES.has(type)) throw methodNotAllowed(`${type}s are append-only: $${operation} is refused`);
  const given = metaParameter(req.body, operation);
  const versionId = req.versionId !== undefined ? parseVersionId(req.versionId) : undefined;
  const result = await ctx.repo.relabel(type, req.id as string, versionId, (meta) => {
    const wanted = operation === 'meta-add' ? added(meta, given) : removed(meta, given);
    return sameLabels(wanted, meta) ? undefined : wanted;
  });
  const answered = answer(result.version, ctx.baseUrl);
  return result.changed ? { ...answered, audit: { entities: [`${type}/${req.id}/_history/${result.version.versionId}`] } } : answered;
}

function answer(version: ResourceVersion, baseUrl: string): FhirResponse {
  const meta = version.resource?.meta ?? {};
  const result: Parameters = { resourceType: 'Parameters', parameter: [{ name: 'return', valueMeta: meta }] };
  return { status: 200, resource: result, headers: versionHeaders(baseUrl, version) };
}

/** The `meta` parameter (valueMeta) of the operation's Parameters body. */
function metaParameter(body: unknown, operation: string): Meta {
  const parameters = body as Parameters | undefined;
  if (parameters?.resourceType !== 'Parameters') throw badRequest(`$${operation} takes a Parameters resource with a "meta" parameter`);
  const found = (parameters.parameter ?? []).filter((p: ParametersParameter) => p.name === 'meta');
  if (found.length !== 1 || typeof found[0].valueMeta !== 'object' || found[0].valueMeta === null) {
    throw badRequest(`$${operation} needs exactly one "meta" parameter (valueMeta)`, 'meta');
  }
  return found[0].valueMeta;
}

const codingKey = (c: Coding): string => `${c.system ?? ''}|${c.code ?? ''}`;

function added(meta: Meta, given: Meta): Meta {
  const profile = [...new Set([...(meta.profile ?? []), ...(given.profile ?? [])])];
  const union = (mine: Coding[] = [], theirs: Coding[] = []): Coding[] => {
    const keys = new Set(mine.map(codingKey));
    return [...mine, ...theirs.filter((c) => !keys.has(codingKey(c)) && keys.add(codingKey(c)))];
  };
  return withLists(meta, profile, union(meta.tag, given.tag), union(meta.security, given.security));
}

function removed(meta: Meta, given: Meta): Meta {
  const gone = new Set(given.profile ?? []);
  const without = (mine: Coding[] = [], theirs: Coding[] = []): Coding[] => {
    const keys = new Set(theirs.map(codingKey));
    return mine.filter((c) => !keys.has(codingKey(c)));
  };
  return withLists(meta, (meta.profile ?? []).filter((p) => !gone.has(p)), without(meta.tag, given.tag), without(meta.security, given.security));
}

/** The meta with these lists, each left out when empty (FHIR JSON has no empty arrays). */
function withLists(meta: Meta, profile: string[], tag: Coding[], security: Coding[]): Meta {
  const { profile: _p, tag: _t, security: _s, ...rest } = meta;
  return {
    ...rest,
    ...(profile.length > 0 ? { profile } : {}),
    ...(security.length > 0 ? { security } : {}),
    ...(tag.length > 0 ? { tag } : {}),
  };
}

function sameLabels(a: Meta, b: Meta): boolean {
  const keys = (m: Meta): string => JSON.stringify([m.profile ?? [], (m.tag ?? []).map(codingKey), (m.security ?? []).map(codingKey)]);
  return keys(a) === keys(b);
}
