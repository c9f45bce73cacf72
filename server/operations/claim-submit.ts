import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Claim, ClaimResponse, Parameters, Resource } from '@medplum/fhirtypes';
import { badRequest, isOperationOutcomeError, type OperationOutcomeError } from '../core/outcome';
import type { FhirContext, FhirHandler, FhirRequest } from '../fhir/fhir-request';
import { processTransaction } from '../fhir/transaction';
import type { ResourceStore } from '../storage/resource-store';
import { adjudicate } from './claim-adjudication';

/**
 * `POST Claim/$submit` (http://hl7.org/fhir/OperationDefinition/Claim-submit): each Claim
 * is stored and adjudicated at once. The body (or the `resource` of a Parameters) is one
 * of the operation's three forms, and the answer has the matching form:
 *  - a Claim → its ClaimResponse;
 *  - a Bundle holding one Claim and the resources it refers to → a `collection` Bundle of
 *    the ClaimResponse and those resources as stored. They are written as the entries of
 *    a transaction would be (`urn:uuid:` and other fullUrls resolved, references
 *    rewritten), except entries whose fullUrl is this server's URL of an existing
 *    resource: those are what the Claim refers to, left as they are;
 *  - a Bundle of Claims (each a Claim, or a Bundle of one Claim and its resources) → a
 *    `collection` Bundle with, in the same order, each one's answer; each is submitted
 *    on its own, and one that fails has an OperationOutcome in its place.
 *
 * Claims and their resources are created through the caller's own store, so the role
 * policy, the SMART scopes and the care boundary decide who may submit (creating a Claim
 * is what submitting is). The ClaimResponse is the adjudicator's, i.e. this server's: it
 * is written without the caller's confinement, in the same database transaction, so a
 * Claim is never left without its answer. All are validated like every write, and the
 * AuditEvent names each Claim and ClaimResponse.
 */
export const submitClaim: FhirHandler = async (req, ctx) => {
  const submitted = submittedResource(req.body);
  const now = new Date();
  const entities: string[] = [];
  const submitOne = async (claim: Claim): Promise<ClaimResponse & { id: string }> =>
    ctx.repo.inTransaction(async (tx) => {
      const stored = (await tx.create(withoutServerFields(claim))).version.resource as Claim & { id: string };
      return answer(stored, tx, now, entities);
    });
  if (submitted.resourceType === 'Claim') {
    const response = await submitOne(submitted as Claim);
    return { status: 200, resource: response, audit: { entities } };
  }
  const bundle = submitted as Bundle;
  const entries = bundle.entry ?? [];
  if (entries.length === 0) throw badRequest('$submit: the Bundle holds no Claim', 'Bundle.entry');
  if (isClaimBundle(bundle)) {
    return { status: 200, resource: await submitClaimBundle(bundle, req, ctx, now, entities), audit: { entities } };
  }
  entries.forEach((entry, i) => {
    const type = entry.resource?.resourceType;
    if (type !== 'Claim' && type !== 'Bundle') {
      throw badRequest(`$submit: Bundle.entry[${i}] is a ${String(type)}: a Bundle of claims holds Claims, or Bundles of one Claim and its resources`, `Bundle.entry[${i}]`);
    }
  });
  const answers: BundleEntry[] = [];
  for (const entry of entries) {
    try {
      const resource = entry.resource as Resource;
      const answered = resource.resourceType === 'Claim' ? await submitOne(resource as Claim) : await submitClaimBundle(resource as Bundle, req, ctx, now, entities);
      answers.push(answered.resourceType === 'Bundle' ? { resource: answered } : { fullUrl: `${ctx.baseUrl}/ClaimResponse/${answered.id}`, resource: answered });
    } catch (err) {
      if (!isOperationOutcomeError(err)) throw err;
      answers.push({ resource: (err as OperationOutcomeError).outcome });
    }
  }
  return { status: 200, resource: { resourceType: 'Bundle', type: 'collection', timestamp: now.toISOString(), entry: answers }, audit: { entities } };
};

/** Adjudicates a stored Claim and stores the ClaimResponse (with the server's authority, in `tx`). */
async function answer(stored: Claim & { id: string }, tx: ResourceStore, now: Date, entities: string[]): Promise<ClaimResponse & { id: string }> {
  const server = tx.unconfined();
  const response = await adjudicate(stored, server, now);
  const written = (await server.create(response)).version.resource as ClaimResponse & { id: string };
  entities.push(`Claim/${stored.id}`, `ClaimResponse/${written.id}`);
  return written;
}

/** A Bundle of one Claim and other resources (not Claims, not Bundles): the second form. */
function isClaimBundle(bundle: Bundle): boolean {
  const types = (bundle.entry ?? []).map((e) => e.resource?.resourceType);
  return types.filter((t) => t === 'Claim').length === 1 && types.some((t) => t !== 'Claim') && !types.includes('Bundle');
}

/**
 * One Claim with its resources, in one database transaction: the resources and the Claim
 * are written as a transaction's creates, then the Claim is adjudicated.
 */
async function submitClaimBundle(bundle: Bundle, req: FhirRequest, ctx: FhirContext, now: Date, entities: string[]): Promise<Bundle> {
  if (!isClaimBundle(bundle)) throw badRequest('$submit: a Bundle inside a Bundle of claims must hold one Claim and the resources it refers to', 'Bundle.entry');
  const entries = bundle.entry ?? [];
  const written = entries.filter((e) => !onThisServer(e, ctx.baseUrl));
  return ctx.repo.inTransaction(async (tx) => {
    const creates: BundleEntry[] = written.map((e) => {
      const resource = e.resource as Resource;
      return { fullUrl: e.fullUrl ?? `urn:uuid:${randomUUID()}`, resource: withoutServerFields(resource), request: { method: 'POST', url: resource.resourceType } };
    });
    const result = await processTransaction(creates, { ...req, preferReturn: 'representation' }, { ...ctx, repo: tx });
    const stored = (result.entry ?? []).map((e) => e.resource as Resource & { id: string });
    const claim = stored.find((r) => r.resourceType === 'Claim') as Claim & { id: string };
    const response = await answer(claim, tx, now, entities);
    const others = stored.filter((r) => r !== claim);
    return {
      resourceType: 'Bundle',
      type: 'collection',
      timestamp: now.toISOString(),
      entry: [response, claim, ...others].map((r) => ({ fullUrl: `${ctx.baseUrl}/${r.resourceType}/${r.id}`, resource: r })),
    };
  });
}

/** An entry naming an existing resource by its URL on this server: what the Claim refers to, not written again. */
function onThisServer(entry: BundleEntry, baseUrl: string): boolean {
  const resource = entry.resource;
  return !!resource?.id && resource.resourceType !== 'Claim' && entry.fullUrl === `${baseUrl}/${resource.resourceType}/${resource.id}`;
}

/** The Claim or Bundle submitted: the body, or the `resource` of a Parameters body. */
function submittedResource(body: unknown): Claim | Bundle {
  let resource = body as Resource | undefined;
  if (resource?.resourceType === 'Parameters') {
    const given = ((resource as Parameters).parameter ?? []).filter((p) => p.name === 'resource');
    if (given.length !== 1 || !given[0].resource) {
      throw badRequest('$submit: the Parameters need exactly one "resource" parameter holding a Claim or a Bundle', 'Parameters.parameter');
    }
    resource = given[0].resource;
  }
  if (resource?.resourceType === 'Claim' || resource?.resourceType === 'Bundle') return resource as Claim | Bundle;
  throw badRequest('$submit needs a Claim, or a Bundle of a Claim and its resources or of claims, in the body (or as the "resource" of Parameters)');
}

/** A submitted resource is a new one: its id and meta are the server's, as on create. */
function withoutServerFields<T extends Resource>(resource: T): T {
  const { id: _id, meta: _meta, ...rest } = resource;
  return rest as T;
}
