import type { Bundle, BundleEntry, BundleLink, Resource } from '@medplum/fhirtypes';
import { outcome } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { encodeEverythingCursor, type EverythingParameters, parseEverythingParameters } from './everything-parameters';
import { nonEmpty } from '../core/non-empty';

/**
 * https://hl7.org/fhir/R4/patient-operation-everything.html — `GET|POST
 * Patient/[id]/$everything` and (type level, every patient) `GET|POST Patient/$everything`.
 *
 * A searchset Bundle: the Patient and every resource of its compartment (search mode
 * `match`), then the resources they refer to outside the compartment (mode `include`);
 * see search/patient-record.ts for what that is and storage/everything-reads.ts for the
 * order. Without `_count` the whole record comes in one Bundle, up to
 * EVERYTHING_PAGE_MAX entries; otherwise pages of `_count` linked by `next` (a keyset
 * cursor: no repeats, no gaps while others write). At type level the records follow one
 * another in patient id order, each complete: a resource shared by two records (a
 * Practitioner) appears in both, once per page.
 */
export const everything: FhirHandler = async (req, ctx) => {
  const typeLevel = req.id === undefined;
  const params = parseEverythingParameters(req, typeLevel);
  if (!typeLevel) {
    // 404 for an unknown patient, 410 for a deleted one.
    await ctx.repo.read('Patient', req.id as string);
  }
  const entries = await ctx.repo.everything({
    patientId: req.id,
    types: params.types,
    since: params.since,
    careDates: params.careDates,
    after: params.after,
    limit: params.count + 1,
  });
  const page = entries.slice(0, params.count);
  const path = `${ctx.baseUrl}/Patient${typeLevel ? '' : `/${encodeURIComponent(req.id as string)}`}/$everything`;
  const next = entries.length > params.count ? encodeEverythingCursor(page[page.length - 1].position) : undefined;
  return { status: 200, resource: everythingBundle(ctx.baseUrl, path, params, page, params.after && encodeEverythingCursor(params.after), next) };
};

/**
 * One page of an `$everything` answer as a searchset Bundle: `self` (with the cursor it
 * started from), `first` on later pages, `next` when more follows; each entry with its
 * search mode, warnings as an `outcome` entry; `total` (the matches) when the whole
 * record is on this first page, where it costs nothing.
 */
export function everythingBundle(
  baseUrl: string,
  path: string,
  params: EverythingParameters,
  page: readonly { resource: Resource; mode: 'match' | 'include' }[],
  selfCursor: string | undefined,
  nextCursor: string | undefined
): Bundle {
  const link: BundleLink[] = [{ relation: 'self', url: linkUrl(path, params.linkParams, selfCursor) }];
  if (selfCursor) link.push({ relation: 'first', url: linkUrl(path, withCount(params.linkParams, params.count)) });
  if (nextCursor) link.push({ relation: 'next', url: linkUrl(path, withCount(params.linkParams, params.count), nextCursor) });
  const entry: BundleEntry[] = page.map(({ resource, mode }) => ({
    fullUrl: `${baseUrl}/${resource.resourceType}/${resource.id}`,
    resource,
    search: { mode },
  }));
  if (params.warnings.length > 0) entry.push({ resource: outcome(params.warnings) as Resource, search: { mode: 'outcome' } });
  const whole = !selfCursor && !nextCursor;
  const total = whole ? { total: page.filter((e) => e.mode === 'match').length } : {};
  return { resourceType: 'Bundle', type: 'searchset', ...total, link, ...nonEmpty('entry', entry) };
}

function withCount(params: URLSearchParams, count: number): URLSearchParams {
  const result = new URLSearchParams(params);
  result.set('_count', String(count));
  return result;
}

function linkUrl(path: string, params: URLSearchParams, cursor?: string): string {
  const query = new URLSearchParams(params);
  if (cursor) query.set('_cursor', cursor);
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}
