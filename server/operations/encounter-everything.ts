import type { Encounter, Resource } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { compartmentFilter, compartmentMemberTypes } from '../search/compartment-definitions';
import { parseSearchRequest } from '../search/parse-search-request';
import { searchEveryMatch } from '../storage/search-every-page';
import { everythingBundle } from './everything';
import { parseEverythingParameters } from './everything-parameters';
import { type LocalReference, localReferences, readReferenced } from './local-references';

/** What one encounter's record may hold; beyond it the request is refused (422 too-costly) rather than served from memory. */
const MAX_RECORD = 20_000;
const PAGE = 1000;

/** 0: the Encounter, 1: its compartment (both search mode match), 2: what those refer to (include): the record's order. */
type Section = 0 | 1 | 2;
interface Item {
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
    const filter = compartmentFilter('Encounter', type, id);
    if (type === 'Encounter' || !filter) continue;
    const request = parseSearchRequest(type, { _count: String(PAGE) }, { strict: true, defaultCount: PAGE, maxCount: PAGE });
    members.push(...(await searchEveryMatch(ctx.repo, { ...request, filters: [...request.filters, filter] }, MAX_RECORD - members.length)));
  }
  const since = params.since === undefined ? undefined : Date.parse(params.since);
  const changed = (r: Resource): boolean => since === undefined || Date.parse(r.meta?.lastUpdated ?? '') >= since;
  const memberKeys = new Set(members.map((r) => `${r.resourceType}/${r.id}`));
  // Referenced from a resource changed since `_since` (or from any, without it).
  const referenced = new Map<string, { reference: LocalReference; fromChanged: boolean }>();
  for (const member of members) {
    for (const reference of localReferences(member, ctx.baseUrl)) {
      if (memberKeys.has(reference.key)) continue;
      // The current version: an encounter's record is what it is now.
      const current = { key: reference.key, type: reference.type, id: reference.id };
      referenced.set(reference.key, { reference: current, fromChanged: (referenced.get(reference.key)?.fromChanged ?? false) || changed(member) });
    }
  }
  const included = (await readReferenced(ctx.repo, [...referenced.values()].map((r) => r.reference))) as (Resource & { id: string })[];

  const items: Item[] = [
    ...members.filter(changed).map((resource): Item => ({ section: resource === encounter ? 0 : 1, resource })),
    ...included.filter((r) => referenced.get(`${r.resourceType}/${r.id}`)?.fromChanged || changed(r)).map((resource): Item => ({ section: 2, resource })),
  ]
    .filter((item) => params.types === undefined || params.types.has(item.resource.resourceType))
    .sort(compareItems);
  const start = after === undefined ? 0 : firstAfter(items, after);
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
      page.map((i) => ({ resource: i.resource, mode: i.section < 2 ? 'match' : 'include' })),
      { self: params.cursor, next: more && last ? encodeCursor(last) : undefined }
    ),
  };
};

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

/** The index of the first item after `position` in the record's order (section, type, id). */
function firstAfter(items: readonly Item[], position: Position): number {
  const at: Item = { section: position.section, resource: { resourceType: position.type, id: position.id } as Resource & { id: string } };
  const index = items.findIndex((item) => compareItems(item, at) > 0);
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
  if (!Array.isArray(parsed) || parsed.length !== 4 || parsed[0] !== 'n' || ![0, 1, 2].includes(parsed[1]) || typeof parsed[2] !== 'string' || typeof parsed[3] !== 'string') {
    throw badRequest('Invalid _cursor: use the next link as the server gave it', '_cursor');
  }
  return { section: parsed[1] as Section, type: parsed[2], id: parsed[3] };
}
