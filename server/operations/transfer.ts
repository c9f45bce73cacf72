import type { Bundle, Encounter, Location, Organization, Patient, Task } from '@medplum/fhirtypes';
import { searchByValues } from '../storage/search-every-page';
import { referenceIdAnywhere } from '../core/references';
import { relationsOf } from '../access/care-boundary';
import type { Principal } from '../access/principal';
import { roleMayCall, shippedOperationPolicy } from '../access/role-policy';
import { ScopeAccess } from '../access/scope-access';
import { badRequest, conflict, forbidden, isOperationOutcomeError, unprocessable } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { parseSearchRequest } from '../search/parse-search-request';
import type { ResourceStore } from '../storage/resource-store';
import { type Bed, bedsOf, isBed, isFree, normaliseKind, OCCUPIED, UNOCCUPIED } from './beds';
import { OperationInput } from './operation-parameters';
import { organizationWithDepartments } from './organization-tree';

const OPERATION = 'transfer';
/** An Encounter the patient is in now: these statuses are "at the hospital". */
const CURRENT_STATUSES = ['arrived', 'triaged', 'in-progress', 'onleave'];
const DISCHARGE_TO_OTHER_FACILITY = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/discharge-disposition', code: 'other-hcf', display: 'Other healthcare facility' }],
};
const ADMITTED_FROM_OTHER_HOSPITAL = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/admit-source', code: 'hosp-trans', display: 'Transferred from other hospital' }],
};
const INPATIENT = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP', display: 'inpatient encounter' };
/** SNOMED CT 107724000 |Patient transfer (procedure)|: what the Task records. */
export const TRANSFER_TASK_CODE = { system: 'http://snomed.info/sct', code: '107724000', display: 'Patient transfer' };

type WithId<T> = T & { id: string };

/**
 * `POST Patient/[id]/$transfer` (docs/transfer.md): moves a patient to another hospital in
 * one database transaction. Parameters: `destination` (Organization, required), `reason`
 * (required), optional `destinationLocation` (a bed of the destination) or `bedKind` (any
 * free bed of that kind there), `encounter` (the Encounter being ended; default the
 * patient's current one) and `origin` (default that Encounter's serviceProvider, else the
 * patient's managingOrganization).
 *
 * The origin's current Encounter is finished (discharge disposition: other healthcare
 * facility), its bed freed; a new in-progress Encounter starts at the destination with
 * `hospitalization.origin`, in the bed, which becomes occupied; a Task records the
 * transfer. The destination's staff reach the patient through that Encounter (the care
 * boundary follows Encounter.serviceProvider) and keep that reach after. The AuditEvent
 * (action E, subtype `transfer`) names everything written.
 *
 * Concurrency: the bed and the origin Encounter are written on the condition that they
 * are the versions read, so of two transfers racing for the last bed (or for the same
 * patient) one commits and the other is a 409 with nothing written.
 */
export const transfer: FhirHandler = async (req, ctx) => {
  const input = OperationInput.of(OPERATION, req.body);
  mayTransfer(ctx.principal);
  const destinationId = input.referenceId('destination', 'Organization');
  if (!destinationId) throw badRequest(`$${OPERATION}: parameter "destination" (a reference to an Organization) is required`, 'destination');
  const reason = input.requiredString('reason');
  const bedId = input.referenceId('destinationLocation', 'Location');
  const wantedKind = input.string('bedKind');
  const encounterId = input.referenceId('encounter', 'Encounter');
  const originParameter = input.referenceId('origin', 'Organization');
  const now = new Date();

  return ctx.repo.unconfined().inTransaction(async (tx) => {
    const patient = (await tx.read('Patient', req.id as string)).resource as WithId<Patient>;
    const destination = await readOrganization(tx, destinationId, 'destination');
    const currents = await currentEncounters(tx, patient.id, encounterId);
    const primary = currents[0];
    const originId = originParameter ?? organizationId(primary?.serviceProvider?.reference) ?? organizationId(patient.managingOrganization?.reference);
    if (originId === destinationId) throw badRequest(`$${OPERATION}: the destination is the origin (Organization/${originId})`, 'destination');
    const originTree = originId ? await organizationWithDepartments(tx, await hospitalOf(tx, originId)) : undefined;
    if (originTree && !isAtOrigin(patient, primary, originTree)) {
      throw conflict(`Patient/${patient.id} is not at Organization/${originId}: no current Encounter there and not managed by it`);
    }
    await callerBelongsTo(ctx.principal, tx, originTree, originId, patient.id);

    const bed = await chooseBed(tx, destinationId, bedId, wantedKind);
    const written: string[] = [];
    const track = (type: string, id: string): string => {
      written.push(`${type}/${id}`);
      return id;
    };
    // Every current stay at the origin ends (the one named, when one is): afterwards the destination's is the only one.
    const ending = encounterId ? currents : currents.filter((e) => atOrigin(e, originTree));
    const finished: WithId<Encounter>[] = [];
    for (const current of ending) {
      const done = finishEncounter(current, destination, now);
      await writeIfUnchanged(tx, done, current, `Encounter/${current.id} changed meanwhile (another transfer or discharge?)`);
      track('Encounter', current.id);
      finished.push(done);
      for (const freed of await bedsHeldBy(tx, current)) {
        await tx.update({ ...freed, operationalStatus: UNOCCUPIED });
        track('Location', freed.id);
      }
    }
    if (bed) {
      await writeIfUnchanged(tx, { ...bed.location, operationalStatus: OCCUPIED }, bed.location, `Location/${bed.location.id} was taken meanwhile: no free bed`);
      track('Location', bed.location.id);
    }
    const started = startEncounter(patient, primary, originId, destinationId, bed, reason, now);
    const startedId = track('Encounter', (await tx.create(started)).version.id);
    const task = transferTask(patient, ctx.principal, originId, destinationId, ending[0]?.id, startedId, bed, reason, now);
    const taskId = track('Task', (await tx.create(task)).version.id);

    const result: Bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      timestamp: now.toISOString(),
      entry: [
        { fullUrl: `${ctx.baseUrl}/Task/${taskId}`, resource: { ...task, id: taskId } },
        { fullUrl: `${ctx.baseUrl}/Encounter/${startedId}`, resource: { ...started, id: startedId } },
        ...finished.map((done) => ({ fullUrl: `${ctx.baseUrl}/Encounter/${done.id}`, resource: done })),
      ],
    };
    return { status: 200, resource: result, audit: { reason, entities: written } };
  });
};

/** 403 unless no token at all (AUTH_REQUIRED=false), or a user whose role the policy allows; and the token may change Encounters. */
function mayTransfer(principal: Principal | undefined): void {
  if (!principal) return;
  if (principal.userId && !roleMayCall(shippedOperationPolicy(), principal.role ?? '', OPERATION)) {
    throw forbidden(`The role "${principal.role ?? 'none'}" may not transfer patients`);
  }
  if (!new ScopeAccess(principal).allows('Encounter', 'u')) throw forbidden('A transfer needs a token whose scopes update Encounters');
}

/**
 * Staff must work for the origin hospital (or a department of it: the whole hospital the
 * origin belongs to counts); admins and backend
 * services act for any, also for a patient whose hospital nothing says (no current
 * Encounter with a serviceProvider, no managingOrganization), which staff cannot move.
 */
async function callerBelongsTo(
  principal: Principal | undefined,
  store: ResourceStore,
  originTree: ReadonlySet<string> | undefined,
  originId: string | undefined,
  patientId: string
): Promise<void> {
  if (!principal?.userId || principal.role === 'admin') return;
  if (!originTree) throw conflict(`Patient/${patientId} is at no hospital: no current Encounter with a serviceProvider and no managingOrganization`);
  const relations = await relationsOf(principal, store);
  const theirs = (relations?.actors ?? []).filter((a) => a.startsWith('Organization/'));
  if (!theirs.some((org) => originTree.has(org))) throw forbidden(`Only staff of the origin hospital (Organization/${originId}) may transfer its patients`);
}

async function readOrganization(store: ResourceStore, id: string, parameter: string): Promise<WithId<Organization>> {
  try {
    return (await store.read('Organization', id)).resource as WithId<Organization>;
  } catch (err) {
    if (isOperationOutcomeError(err) && (err.status === 404 || err.status === 410)) {
      throw unprocessable(`$${OPERATION}: ${parameter} Organization/${id} does not exist`, parameter);
    }
    throw err;
  }
}

/** The Encounter named, which must be the patient's and current; or the patient's current ones, most recent first. */
async function currentEncounters(store: ResourceStore, patientId: string, encounterId: string | undefined): Promise<WithId<Encounter>[]> {
  if (encounterId) {
    const encounter = (await store.read('Encounter', encounterId)).resource as WithId<Encounter>;
    if (encounter.subject?.reference !== `Patient/${patientId}`) throw conflict(`Encounter/${encounterId} is not an Encounter of Patient/${patientId}`);
    if (!CURRENT_STATUSES.includes(encounter.status)) throw conflict(`Encounter/${encounterId} is ${encounter.status}: the patient is not there now`);
    return [encounter];
  }
  const request = parseSearchRequest(
    'Encounter',
    { patient: `Patient/${patientId}`, status: CURRENT_STATUSES.join(','), _sort: '-date', _count: String(MAX_CURRENT) },
    { strict: true, defaultCount: MAX_CURRENT, maxCount: MAX_CURRENT }
  );
  return (await store.search(request)).resources as WithId<Encounter>[];
}

/** Current Encounters of one patient considered at most: far more than one stay can have. */
const MAX_CURRENT = 50;

/** The hospital an organisation belongs to: up Organization.partOf to the top (a few levels at most; a cycle stops the walk). */
async function hospitalOf(store: ResourceStore, start: string): Promise<string> {
  let current = start;
  const seen = new Set([current]);
  for (let depth = 0; depth < MAX_HOSPITAL_DEPTH; depth++) {
    const organization = (await store.read('Organization', current).catch(() => undefined))?.resource as Organization | undefined;
    const parent = organizationId(organization?.partOf?.reference);
    if (!parent || seen.has(parent)) return current;
    seen.add(parent);
    current = parent;
  }
  return current;
}

const MAX_HOSPITAL_DEPTH = 6;

/** Whether a current Encounter is a stay at the origin: there, or with no serviceProvider at all (then it is the stay being left). */
function atOrigin(encounter: Encounter, originTree: ReadonlySet<string> | undefined): boolean {
  const provider = encounter.serviceProvider?.reference;
  if (!provider) return true;
  return originTree?.has(provider) ?? false;
}

function isAtOrigin(patient: Patient, current: Encounter | undefined, originTree: ReadonlySet<string>): boolean {
  if (current?.serviceProvider?.reference) return originTree.has(current.serviceProvider.reference);
  return originTree.has(patient.managingOrganization?.reference ?? '');
}

/** The bed asked for (it must be a free bed of the destination), or any free bed of the kind asked for; none when neither was asked. */
async function chooseBed(store: ResourceStore, destinationId: string, bedId: string | undefined, wantedKind: string | undefined): Promise<Bed | undefined> {
  if (!bedId && !wantedKind) return undefined;
  const beds = await bedsOf(store, destinationId);
  if (bedId) {
    const bed = beds.find((b) => b.location.id === bedId);
    if (!bed) throw unprocessable(`$${OPERATION}: Location/${bedId} is not a bed of Organization/${destinationId}`, 'destinationLocation');
    if (wantedKind && bed.kind !== normaliseKind(wantedKind)) throw unprocessable(`$${OPERATION}: Location/${bedId} is a ${bed.kind} bed, not ${wantedKind}`, 'bedKind');
    if (!isFree(bed.location)) throw conflict(`Location/${bedId} is not free`);
    return bed;
  }
  const kind = normaliseKind(wantedKind as string);
  const free = beds.filter((b) => b.kind === kind && isFree(b.location));
  if (free.length === 0) throw conflict(`Organization/${destinationId} has no free ${wantedKind} bed`);
  return free[0];
}

/** Writes `next` only if `read` is still the current version; a lost race is a 409. */
async function writeIfUnchanged(store: ResourceStore, next: Encounter | Location, read: Encounter | Location, lost: string): Promise<void> {
  try {
    await store.update(next as WithId<Encounter | Location>, Number(read.meta?.versionId));
  } catch (err) {
    if (isOperationOutcomeError(err) && err.status === 412) throw conflict(lost);
    throw err;
  }
}

/** The beds the Encounter holds now (its active location entries that are beds). */
async function bedsHeldBy(store: ResourceStore, encounter: Encounter): Promise<WithId<Location>[]> {
  const ids = (encounter.location ?? [])
    .filter((l) => l.status === undefined || l.status === 'active')
    .map((l) => referenceIdAnywhere(l.location?.reference, 'Location'))
    .filter((id): id is string => id !== undefined);
  // One query for them all; a Location deleted since is simply not there.
  return (await searchByValues<Location>(store, 'Location', '_id', ids)).filter(isBed);
}

function finishEncounter(current: WithId<Encounter>, destination: WithId<Organization>, now: Date): WithId<Encounter> {
  const end = now.toISOString();
  return {
    ...current,
    status: 'finished',
    statusHistory: [...(current.statusHistory ?? []), { status: current.status, period: { ...(current.period?.start ? { start: current.period.start } : {}), end } }],
    period: { ...current.period, end },
    hospitalization: {
      ...current.hospitalization,
      destination: { reference: `Organization/${destination.id}`, display: destination.name },
      dischargeDisposition: { ...DISCHARGE_TO_OTHER_FACILITY, text: `Transferred to ${destination.name ?? `Organization/${destination.id}`}` },
    },
    ...(current.location
      ? { location: current.location.map((l) => (l.status === undefined || l.status === 'active' ? { ...l, status: 'completed' as const, period: { ...l.period, end } } : l)) }
      : {}),
  };
}

function startEncounter(
  patient: WithId<Patient>,
  previous: Encounter | undefined,
  originId: string | undefined,
  destinationId: string,
  bed: Bed | undefined,
  reason: string,
  now: Date
): Encounter {
  const start = now.toISOString();
  return {
    resourceType: 'Encounter',
    status: 'in-progress',
    class: previous?.class ?? INPATIENT,
    ...(previous?.type ? { type: previous.type } : {}),
    subject: { reference: `Patient/${patient.id}` },
    serviceProvider: { reference: `Organization/${destinationId}` },
    period: { start },
    reasonCode: [{ text: reason }],
    hospitalization: { ...(originId ? { origin: { reference: `Organization/${originId}` } } : {}), admitSource: ADMITTED_FROM_OTHER_HOSPITAL },
    ...(bed ? { location: [{ location: { reference: `Location/${bed.location.id}` }, status: 'active', period: { start } }] } : {}),
  };
}

function transferTask(
  patient: WithId<Patient>,
  principal: Principal | undefined,
  originId: string | undefined,
  destinationId: string,
  previousId: string | undefined,
  startedId: string,
  bed: Bed | undefined,
  reason: string,
  now: Date
): Task {
  const at = now.toISOString();
  const requester = principal?.fhirUser && /^(Practitioner|PractitionerRole|Organization|Patient|RelatedPerson|Device)\//.test(principal.fhirUser) ? { requester: { reference: principal.fhirUser } } : {};
  return {
    resourceType: 'Task',
    status: 'completed',
    intent: 'order',
    code: { coding: [TRANSFER_TASK_CODE], text: 'Patient transfer' },
    description: reason,
    focus: { reference: `Encounter/${startedId}` },
    for: { reference: `Patient/${patient.id}` },
    encounter: { reference: `Encounter/${startedId}` },
    executionPeriod: { start: at, end: at },
    authoredOn: at,
    lastModified: at,
    ...requester,
    owner: { reference: `Organization/${destinationId}` },
    reasonCode: { text: reason },
    ...inputs([
      ...(originId ? [{ type: { text: 'origin' }, valueReference: { reference: `Organization/${originId}` } }] : []),
      ...(previousId ? [{ type: { text: 'origin encounter' }, valueReference: { reference: `Encounter/${previousId}` } }] : []),
    ]),
    output: [
      { type: { text: 'encounter' }, valueReference: { reference: `Encounter/${startedId}` } },
      ...(bed ? [{ type: { text: 'bed' }, valueReference: { reference: `Location/${bed.location.id}` } }] : []),
    ],
  };
}

/** Task.input only when there is one: FHIR JSON has no empty arrays. */
function inputs(input: NonNullable<Task['input']>): Pick<Task, 'input'> {
  return input.length > 0 ? { input } : {};
}

function organizationId(reference: string | undefined): string | undefined {
  return referenceIdAnywhere(reference, 'Organization');
}
