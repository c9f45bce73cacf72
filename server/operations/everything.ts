import type { Bundle, BundleEntry, BundleLink, Resource } from '@medplum/fhirtypes';
import { outcome } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { encodeEverythingCursor, type EverythingParameters, parseEverythingParameters } from './everything-parameters';
import { nonEmpty } from '../core/non-empty';
import { applySummary } from '../fhir/summary';

/**
 * https://hl7.org/fhir/R4/patient-operation-everything.html — `GET|POST
 * Patient/[id]/$everything` and (type level, every patient) `GET|POST Patient/$everything`.
 *
 * A searchset Bundle: the Patient and every resource of its compartment (search mode
 * `match`), then the resources they refer to outside the compartment (mode `include`);
 * see search/patient-record.ts for what that is and storage/everything-reads.ts for the
 * order. Without `_count` the whole record comes in one Bundle, up to
 * EVERYTHING_PAGE_MAX entries; otherwise pages of `_count` linked by `next` and
 * `previous` (keyset cursors: no repeats, no gaps while others write), each with the
 * record's total where it can be told (docs/everything.md). At type level the records follow one
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
  const selection = { patientId: req.id, types: params.types, since: params.since, careDates: params.careDates };
  const entries = await ctx.repo.everything({ ...selection, after: params.after, before: params.before, limit: params.count + 1 });
  const more = entries.length > params.count;
  // A previous page is read backwards from its cursor: the extra entry is its first, and says that more lie before it.
  const page = params.before && more ? entries.slice(entries.length - params.count) : entries.slice(0, params.count);
  const first = page[0];
  const last = page[page.length - 1];
  const cursors = {
    self: params.after ? encodeEverythingCursor(params.after) : params.before && encodeEverythingCursor(params.before, 'before'),
    next: last && (params.before || more) ? encodeEverythingCursor(last.position) : undefined,
    previous: first && (params.before ? more : params.after) ? encodeEverythingCursor(first.position, 'before') : undefined,
  };
  // Counted when the record spans several pages (one statement); a whole record counts its own match entries.
  const whole = !cursors.self && !cursors.next;
  const total = whole || typeLevel ? undefined : await ctx.repo.everythingTotal({ ...selection, patientId: req.id as string, limit: 0 });
  const path = `${ctx.baseUrl}/Patient${typeLevel ? '' : `/${encodeURIComponent(req.id as string)}`}/$everything`;
  return { status: 200, resource: everythingBundle(ctx.baseUrl, path, params, page, { ...cursors, total }) };
};

/** A page's cursors (self, next, previous: see everything-parameters.ts) and, when known, the record's `total`. */
export interface EverythingLinks {
  self?: string;
  next?: string;
  previous?: string;
  total?: number;
}

/**
 * One page of an `$everything` answer as a searchset Bundle: `self` (with the cursor it
 * started from), `first` and `previous` on later pages, `next` when more follows; each
 * entry with its search mode, warnings as an `outcome` entry; `total` (the matches) as
 * given, or counted from the page when the whole record is on it.
 */
export function everythingBundle(
  baseUrl: string,
  path: string,
  params: EverythingParameters,
  page: readonly { resource: Resource; mode: 'match' | 'include' }[],
  links: EverythingLinks
): Bundle {
  const paged = withCount(params.linkParams, params.count);
  const link: BundleLink[] = [{ relation: 'self', url: linkUrl(path, params.linkParams, links.self) }];
  if (links.self) link.push({ relation: 'first', url: linkUrl(path, paged) });
  if (links.previous) link.push({ relation: 'previous', url: linkUrl(path, paged, links.previous) });
  if (links.next) link.push({ relation: 'next', url: linkUrl(path, paged, links.next) });
  const entry: BundleEntry[] = page.map(({ resource, mode }) => ({
    fullUrl: `${baseUrl}/${resource.resourceType}/${resource.id}`,
    // `_elements` names elements of any of the record's types: each entry keeps those it has (and its mandatory ones).
    resource: params.summary || params.elements ? applySummary(resource, params.summary, params.elements) : resource,
    search: { mode },
  }));
  if (params.warnings.length > 0) entry.push({ resource: outcome(params.warnings) as Resource, search: { mode: 'outcome' } });
  const whole = !links.self && !links.next;
  const total = links.total ?? (whole ? page.filter((e) => e.mode === 'match').length : undefined);
  return { resourceType: 'Bundle', type: 'searchset', ...(total !== undefined ? { total } : {}), link, ...nonEmpty('entry', entry) };
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
