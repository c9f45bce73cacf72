import type { Encounter, Resource } from '@medplum/fhirtypes';
import { badRequest, tooLarge } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { compartmentFilter, compartmentMemberTypes } from '../search/compartment-definitions';
import { parseSearchRequest } from '../search/parse-search-request';
import type { SearchFilter } from '../search/search-request';
import type { ResourceStore } from '../storage/resource-store';
import { everythingBundle } from './everything';
import { parseEverythingParameters } from './everything-parameters';
import { localReferences, readReferenced } from './local-references';

/** What one encounter's record may hold; beyond it the request is refused rather than served from memory. */
const MAX_RECORD = 20_000;
const PAGE = 1000;

type Section = 0 | 1;
interface Item {
  /** 0: the Encounter and its compartment (search mode match); 1: what those refer to (include). */
  section: Section;
  resource: Resource & { id: string };
}

/**
 * `GET|POST Encounter/[id]/$everything` (R4 encounter-operation-everything): the Encounter
 * and every resource of its compartment (the official CompartmentDefinition: resources
 * whose `encounter`, `context` … parameter refers to it), search mode `match`, then every
 * resource those refer to that is not among them (the Patient, practitioners, locations,
 * the service provider, a Condition of another encounter named as a diagnosis …), mode
 * `include`. `_type` keeps only those types (references are still followed from the
 * whole record), `_since` only what changed since (and what a changed resource refers
 * to), `_count` pages with `next` links whose cursor is a position in the record's order
 * (section, type, id), so that nothing repeats or goes missing while others write.
 * Everything is read through the caller's store: what they may not read is not there.
 * Without `_count` the whole record comes in one Bundle (up to EVERYTHING_PAGE_MAX).
 */
export const encounterEverything: FhirHandler = async (req, ctx) => {
  const params = parseEverythingParameters(req, false, { operation: 'everything', careDates: false, rawCursor: true });
  const after = params.cursor === undefined ? undefined : decodeCursor(params.cursor);
  const id = req.id as string;
  const encounter = (await ctx.repo.read('Encounter', id)).resource as Encounter & { id: string };

  const members: (Resource & { id: string })[] = [encounter];
  for (const type of compartmentMemberTypes('Encounter')) {
    if (type === 'Encounter') continue;
    const filter = compartmentFilter('Encounter', type, id);
    if (filter) members.push(...(await everyMatch(ctx.repo, type, filter)));
    if (members.length > MAX_RECORD) throw tooLarge(`Encounter/${id} has more than ${MAX_RECORD} resources in its record`);
  }
  const since = params.since === undefined ? undefined : Date.parse(params.since);
  const changed = (r: Resource): boolean => since === undefined || Date.parse(r.meta?.lastUpdated ?? '') >= since;
  const memberKeys = new Set(members.map((r) => `${r.resourceType}/${r.id}`));
  // Referenced from a resource changed since `_since` (or from any, without it).
  const referenced = new Map<string, boolean>();
  for (const member of members) {
    for (const { key } of localReferences(member, ctx.baseUrl)) {
      if (!memberKeys.has(key)) referenced.set(key, (referenced.get(key) ?? false) || changed(member));
    }
  }
  const included = (await readReferenced(
    ctx.repo,
    [...referenced.keys()].map((key) => ({ key, type: key.split('/')[0], id: key.split('/')[1] }))
  )) as (Resource & { id: string })[];

  const items: Item[] = [
    ...members.filter(changed).map((resource): Item => ({ section: 0, resource })),
    ...included.filter((r) => referenced.get(`${r.resourceType}/${r.id}`) || changed(r)).map((resource): Item => ({ section: 1, resource })),
  ]
    .filter((item) => params.types === undefined || params.types.has(item.resource.resourceType))
    .sort(compareItems);
  // The Encounter itself leads the record.
  const first = items.findIndex((i) => i.section === 0 && i.resource.resourceType === 'Encounter' && i.resource.id === id);
  if (first > 0) items.unshift(...items.splice(first, 1));
  const start = after === undefined ? 0 : firstAfter(items, after, id);
  const page = items.slice(start, start + params.count);
  const more = start + params.count < items.length;
  const last = page[page.length - 1];
  const path = `${ctx.baseUrl}/Encounter/${encodeURIComponent(id)}/$everything`;
  return {
    status: 200,
    resource: everythingBundle(
      ctx.baseUrl,
      path,
      params,
      page.map((i) => ({ resource: i.resource, mode: i.section === 0 ? 'match' : 'include' })),
      params.cursor,
      more && last ? encodeCursor(last) : undefined
    ),
  };
};

async function everyMatch(store: ResourceStore, type: string, filter: SearchFilter): Promise<(Resource & { id: string })[]> {
  let request = parseSearchRequest(type, { _count: String(PAGE) }, { strict: true, defaultCount: PAGE, maxCount: PAGE });
  request = { ...request, filters: [...request.filters, filter] };
  const found: (Resource & { id: string })[] = [];
  for (;;) {
    const page = await store.search(request);
    found.push(...(page.resources as (Resource & { id: string })[]));
    if (found.length > MAX_RECORD) return found;
    if (!page.hasMore || !page.next) return found;
    request = { ...request, cursor: page.next };
  }
}

function compareItems(a: Item, b: Item): number {
  return a.section - b.section || compareStrings(a.resource.resourceType, b.resource.resourceType) || compareStrings(a.resource.id, b.resource.id);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface Position {
  section: Section;
  type: string;
  id: string;
}

/** The index of the first item after `position` in the record's order (the Encounter first, then section, type, id). */
function firstAfter(items: readonly Item[], position: Position, encounterId: string): number {
  const isEncounter = (p: Position): boolean => p.section === 0 && p.type === 'Encounter' && p.id === encounterId;
  if (isEncounter(position)) return items.length > 0 && items[0].resource.resourceType === 'Encounter' && items[0].resource.id === encounterId ? 1 : 0;
  const index = items.findIndex((item) => {
    if (item.section === 0 && item.resource.resourceType === 'Encounter' && item.resource.id === encounterId) return false;
    return compareItems(item, { section: position.section, resource: { resourceType: position.type, id: position.id } as Resource & { id: string } }) > 0;
  });
  return index < 0 ? items.length : index;
}

function encodeCursor(item: Item): string {
  return Buffer.from(JSON.stringify(['n', item.section, item.resource.resourceType, item.resource.id])).toString('base64url');
}

function decodeCursor(text: string): Position {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== 4 || parsed[0] !== 'n' || (parsed[1] !== 0 && parsed[1] !== 1) || typeof parsed[2] !== 'string' || typeof parsed[3] !== 'string') {
    throw badRequest('Invalid _cursor: use the next link as the server gave it', '_cursor');
  }
  return { section: parsed[1] as Section, type: parsed[2], id: parsed[3] };
}
