import type { Claim, ClaimResponse, Parameters, Resource } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { adjudicate } from './claim-adjudication';

/**
 * `POST Claim/$submit` (http://hl7.org/fhir/OperationDefinition/Claim-submit): the Claim
 * is stored and adjudicated at once; the answer is the ClaimResponse itself (the
 * operation's single `return` output). The body is the Claim, or a Parameters with it as
 * `resource`.
 *
 * The Claim is created through the caller's own store, so the role policy, the SMART
 * scopes and the care boundary decide who may submit (creating a Claim is what submitting
 * is). The ClaimResponse is the adjudicator's, i.e. this server's: it is written without
 * the caller's confinement, in the same database transaction, so a Claim is never left
 * without its answer. Both are validated like every write, and the AuditEvent names both.
 */
export const submitClaim: FhirHandler = async (req, ctx) => {
  const claim = claimOf(req.body);
  const now = new Date();
  return ctx.repo.inTransaction(async (tx) => {
    const stored = (await tx.create(claim)).version.resource as Claim & { id: string };
    const server = tx.unconfined();
    const response = await adjudicate(stored, server, now);
    const written = (await server.create(response)).version.resource as ClaimResponse & { id: string };
    return {
      status: 200,
      resource: written,
      audit: { entities: [`Claim/${stored.id}`, `ClaimResponse/${written.id}`] },
    };
  });
};

function claimOf(body: unknown): Claim {
  const resource = body as Resource | undefined;
  if (resource?.resourceType === 'Claim') return withoutServerFields(resource);
  if (resource?.resourceType === 'Parameters') {
    const parameters = (resource as Parameters).parameter ?? [];
    const given = parameters.filter((p) => p.name === 'resource');
    if (given.length !== 1 || given[0].resource?.resourceType !== 'Claim') {
      throw badRequest('$submit: the Parameters need exactly one "resource" parameter holding a Claim', 'Parameters.parameter');
    }
    return withoutServerFields(given[0].resource as Claim);
  }
  if (resource?.resourceType === 'Bundle') {
    throw badRequest('$submit: a Bundle of claims is not supported here; send one Claim (or Parameters with "resource")');
  }
  throw badRequest('$submit needs a Claim in the body (or Parameters with a "resource" holding one)');
}

/** A submitted Claim is a new resource: its id and meta are the server's, as on create. */
function withoutServerFields(claim: Claim): Claim {
  const { id: _id, meta: _meta, ...rest } = claim;
  return rest as Claim;
}
