import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Composition, Resource } from '@medplum/fhirtypes';
import { badRequest, notFound, unprocessable } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import type { ResourceStore } from '../storage/resource-store';
import { type LocalReference, localReferences, readReferenced } from './local-references';
import { OperationInput } from './operation-parameters';

/** More resources than this in one document is a request to narrow, not to serve. */
const MAX_DOCUMENT_RESOURCES = 5000;

/**
 * `Composition/[id]/$document` and `Composition/$document?id=` (R4
 * composition-operation-document): the Composition as a `document` Bundle
 * (documents.html): the Composition first, then what it refers to — its subject,
 * encounter, authors, attesters, custodian, event details, every section's author, focus
 * and entries, the documents it relates to — and, transitively, what those refer to: a
 * document is closed, every reference in it resolves inside it (HL7's validator refuses
 * a document Bundle with one that does not). A version-specific reference brings that
 * version. Everything is read through the caller's store: what the document SHALL hold
 * (its subject, authors, section entries …) must be readable, else 422; further
 * resources they may not read, or that are not stored here, are left out. `persist=true` also stores the Bundle (a
 * new Bundle each call) and gives its Location. `graph` (a GraphDefinition) is refused:
 * this server does not build documents from one.
 */
export const compositionDocument: FhirHandler = async (req, ctx) => {
  const input = OperationInput.of('document', req.body, req.query);
  const given = input.string('id');
  if (req.id !== undefined && given !== undefined) throw badRequest('$document: the id parameter may not be used on a Composition instance (composition-operation-document)', 'id');
  if (input.string('graph') !== undefined) throw badRequest('$document: the graph parameter (a GraphDefinition) is not supported by this server', 'graph');
  const persist = input.boolean('persist') ?? false;
  const id = req.id ?? compositionId(given, ctx.baseUrl);
  const composition = (await ctx.repo.read('Composition', id)).resource as Composition;

  const document = await documentBundle(ctx.repo, ctx.baseUrl, { fullUrl: `${ctx.baseUrl}/Composition/${id}`, resource: composition });
  if (!persist) return { status: 200, resource: document };
  const { version } = await ctx.repo.create(document);
  return {
    status: 200,
    resource: version.resource,
    headers: { Location: `${ctx.baseUrl}/Bundle/${version.id}/_history/${version.versionId}` },
    audit: { entities: [`Bundle/${version.id}`] },
  };
};

/** What documentBundle may leave out or must include, beyond its defaults. */
export interface DocumentRules {
  /** Resources not to bring in (nor follow): an IPS has one Patient and one Composition. */
  exclude?: (reference: LocalReference) => boolean;
}

/**
 * The elements whose references a document SHALL include (documents.html, "Document
 * Content": subject, encounter, author, attester.party, custodian, event.detail,
 * section.author, section.focus, section.entry): without one of them it is not the
 * document, and the operation says so rather than answer an incomplete one.
 */
function requiredReferences(composition: Composition, baseUrl: string): LocalReference[] {
  const sections = (list: Composition['section']): unknown[] => (list ?? []).flatMap((s) => [s.author, s.focus, s.entry, ...sections(s.section)]);
  return localReferences(
    [composition.subject, composition.encounter, composition.author, (composition.attester ?? []).map((a) => a.party), composition.custodian, (composition.event ?? []).map((e) => e.detail), sections(composition.section)],
    baseUrl
  );
}

/**
 * A `document` Bundle: `composition` first (stored here or made for the occasion, with a
 * `urn:uuid:` fullUrl), then `extra` (made for the occasion too, e.g. the Device that
 * authored a generated summary), then every resource stored here that these refer to,
 * transitively, read through `store`. A reference the document SHALL include
 * (requiredReferences) that cannot be read — not here, deleted, or not for this caller —
 * is a 422 naming it: the operation "either returns a full document bundle, or returns
 * an error" (composition-operation-document). Further references that cannot be read are
 * left out.
 */
export async function documentBundle(store: ResourceStore, baseUrl: string, composition: BundleEntry, extra: readonly BundleEntry[] = [], rules: DocumentRules = {}): Promise<Bundle> {
  const included = new Map<string, Resource>();
  const root = composition.resource as Composition;
  if (root.id) included.set(`${root.resourceType}/${root.id}`, root);
  const tried = new Set<string>(included.keys());
  const follow = (refs: LocalReference[]): LocalReference[] => (rules.exclude ? refs.filter((r) => !rules.exclude?.(r)) : refs);
  let wanted = follow(localReferences([root, ...extra.map((e) => e.resource)], baseUrl));
  while (wanted.length > 0) {
    const fresh = wanted.filter((r) => !tried.has(r.key));
    for (const r of fresh) tried.add(r.key);
    const found = await readReferenced(store, fresh);
    if (included.size + found.length > MAX_DOCUMENT_RESOURCES) {
      throw badRequest(`$document: the document would hold more than ${MAX_DOCUMENT_RESOURCES} resources`);
    }
    for (const resource of found) included.set(`${resource.resourceType}/${resource.id}`, resource);
    wanted = follow(found.flatMap((r) => localReferences(r, baseUrl)));
  }
  const missing = [...new Set(follow(requiredReferences(root, baseUrl)).map((r) => r.key))].filter((key) => !included.has(key));
  if (missing.length > 0) throw unprocessable(`The document cannot be made whole: ${missing.join(', ')} cannot be read here`);
  included.delete(`${root.resourceType}/${root.id}`);
  const timestamp = new Date().toISOString();
  return {
    resourceType: 'Bundle',
    // documents.html: the document's date is Bundle.meta.lastUpdated as well as Bundle.timestamp (bdl-10).
    meta: { lastUpdated: timestamp },
    identifier: { system: 'urn:ietf:rfc:3986', value: `urn:uuid:${randomUUID()}` },
    type: 'document',
    timestamp,
    entry: [composition, ...extra, ...[...included.values()].map((resource): BundleEntry => ({ fullUrl: `${baseUrl}/${resource.resourceType}/${resource.id}`, resource }))],
  };
}

/** The `id` parameter: a plain id, `Composition/id`, or this server's URL of one; another server's Composition is not fetched. */
function compositionId(given: string | undefined, baseUrl: string): string {
  if (given === undefined) throw badRequest('$document: which Composition? Call it on Composition/[id] or give the id parameter', 'id');
  const local = given.startsWith(`${baseUrl}/`) ? given.slice(baseUrl.length + 1) : given;
  const match = /^(?:Composition\/)?([A-Za-z0-9\-.]{1,64})$/.exec(local);
  if (!match) throw notFound(`$document: ${given} is not a Composition on this server`);
  return match[1];
}
