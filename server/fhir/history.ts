import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import { parseDateRange, restoreTimeZonePlus } from '../core/date-range';
import type { ResourceVersion } from '../storage/resource-row';
import type { FhirHandler, FhirRequest } from './fhir-request';
import { etag } from './version-headers';
import { singleValue as single } from './query-value';
import { nonEmpty } from '../core/non-empty';


function parseCount(req: FhirRequest, fallback: number, max: number): number {
  const raw = single(req.query._count);
  if (raw === undefined || raw === '') {
    return fallback;
  }
  if (!/^\d+$/.test(raw)) {
    throw badRequest(`_count must be a non-negative integer, got "${raw}"`);
  }
  return Math.min(Math.max(Number(raw), 1), max);
}

function parseSince(raw: string | undefined): Date | undefined {
  if (raw === undefined || raw === '') {
    return undefined;
  }
  const range = parseDateRange(restoreTimeZonePlus(raw));
  if (!range) {
    throw badRequest(`_since must be an instant, got "${raw}"`);
  }
  return range.start;
}

const STATUS: Record<ResourceVersion['method'], string> = {
  POST: '201 Created',
  PUT: '200 OK',
  PATCH: '200 OK',
  DELETE: '204 No Content',
};

function entry(baseUrl: string, v: ResourceVersion): BundleEntry {
  const url = v.method === 'POST' ? v.resourceType : `${v.resourceType}/${v.id}`;
  const status = v.versionId === 1 && v.method === 'PUT' ? '201 Created' : STATUS[v.method];
  return {
    fullUrl: `${baseUrl}/${v.resourceType}/${v.id}`,
    resource: v.resource,
    request: { method: v.method, url },
    response: { status, etag: etag(v.versionId), lastModified: v.lastUpdated.toISOString() },
  };
}

/** https://hl7.org/fhir/R4/http.html#history — instance, type and system level. */
export const history: FhirHandler = async (req, ctx) => {
  const count = parseCount(req, ctx.config.historyDefaultCount, ctx.config.searchMaxCount);
  const atRaw = single(req.query._at);
  const at = atRaw ? parseDateRange(restoreTimeZonePlus(atRaw)) : undefined;
  if (atRaw && !at) {
    throw badRequest(`_at must be a date, dateTime or instant, got "${atRaw}"`);
  }
  const page = await ctx.repo.history({
    resourceType: req.resourceType,
    id: req.id,
    since: parseSince(single(req.query._since)),
    at,
    count,
    cursor: single(req.query._cursor),
  });
  if (req.id && page.versions.length === 0) {
    // An empty page is fine for a known resource; an id never seen is 404.
    await ctx.repo.vread(req.resourceType as string, req.id, 1).catch((err: { status?: number }) => {
      if (err.status !== 410) {
        throw err;
      }
    });
  }

  const path = [ctx.baseUrl, req.resourceType, req.id, '_history'].filter(Boolean).join('/');
  const params = new URLSearchParams(req.queryString);
  params.delete('_cursor');
  const self = params.toString() ? `${path}?${params}` : path;
  const link: Bundle['link'] = [{ relation: 'self', url: req.queryString ? `${path}?${req.queryString}` : path }];
  if (page.nextCursor) {
    params.set('_count', String(count));
    params.set('_cursor', page.nextCursor);
    link.push({ relation: 'next', url: `${path}?${params}` });
  }
  if (single(req.query._cursor)) {
    link.push({ relation: 'first', url: self });
  }
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'history',
    link,
    ...nonEmpty('entry', page.versions.map((v) => entry(ctx.baseUrl, v))),
  };
  return { status: 200, resource: bundle };
};
