import type { Appointment, AppointmentParticipant, AppointmentResponse, CodeableConcept } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { isOperationOutcomeError, unprocessable } from '../core/outcome';
import { normalizeReference } from '../search/reference-parameter';
import type { Db } from './sql';
import type { WriteCompanion, WriteOperation, WriteResult } from './write-resource';

type Write = (db: Db, op: WriteOperation, companion?: WriteCompanion) => Promise<WriteResult>;

/** Statuses from which all required participants accepting confirms the appointment (AppointmentStatus: proposed, pending → booked). */
const AWAITING_STATUSES = ['proposed', 'pending'];
/** Rounds of read, change, write-if-unchanged before giving up on an Appointment others keep changing. */
const MAX_ATTEMPTS = 10;

/**
 * An AppointmentResponse is a participant's reply, and this server manages the
 * appointments stored here (docs/scheduling.md, "Replies"): in the same transaction as
 * the response, the Appointment it answers gets the reply as its participant's status.
 *
 * The participant is the one whose actor is the response's actor; failing that, one
 * without an actor whose type shares a coding with the response's participantType
 * (appointmentresponse.html: participantType "SHALL be the same as specified on the
 * referenced Appointment so that they can be matched"), which the responder then fills
 * (unless the responder is a Patient).
 * Once every required participant (`required` absent or `required`) has accepted, a
 * proposed or pending Appointment with its times set becomes booked, through the write
 * path, so booking's rules apply: an acceptance that would double-book is refused (409)
 * and nothing is written. A reply to an Appointment stored here that names none of its
 * participants is a 422. Left alone: a response that is deleted, one to an Appointment
 * not stored here, and the Appointment's times (a counter proposal's are only in the
 * response).
 */
export async function writeAppointmentResponse(db: Db, op: WriteOperation, writeResponse: Write, writeAppointment: Write, companion?: WriteCompanion): Promise<WriteResult> {
  const response = op.method === 'DELETE' ? undefined : (op.resource as AppointmentResponse | undefined);
  const appointmentId = response ? /^Appointment\/([^/]+)$/.exec(normalizeReference(response.appointment?.reference ?? '') ?? '')?.[1] : undefined;
  if (!response || appointmentId === undefined) return writeResponse(db, op, companion);
  const apply = async (tx: Knex.Transaction): Promise<WriteResult> => {
    const result = await writeResponse(tx, op, companion);
    for (let attempt = 1; ; attempt++) {
      const row: { content: Appointment; version_id: number } | undefined = (await tx.raw(`SELECT content, version_id FROM "Appointment" WHERE id = ? AND NOT deleted`, [appointmentId])).rows[0];
      if (!row) return result;
      const answered = withReply(row.content, response, appointmentId);
      if (answered === undefined) return result;
      try {
        await writeAppointment(tx, { method: 'PUT', resourceType: 'Appointment', id: appointmentId, resource: answered, ifMatch: row.version_id });
        return result;
      } catch (err) {
        // Another writer changed the Appointment since it was read: apply the reply to the new version.
        if (attempt < MAX_ATTEMPTS && isOperationOutcomeError(err) && err.status === 412) continue;
        throw err;
      }
    }
  };
  return db.isTransaction ? apply(db as Knex.Transaction) : (db as Knex).transaction(apply);
}

/** The Appointment with the reply applied, or undefined when it already says so. */
function withReply(appointment: Appointment, response: AppointmentResponse, appointmentId: string): Appointment | undefined {
  const participants = appointment.participant ?? [];
  const actor = response.actor?.reference ? normalizeReference(response.actor.reference) : undefined;
  let at = actor === undefined ? -1 : participants.findIndex((p) => p.actor?.reference !== undefined && normalizeReference(p.actor.reference) === actor);
  // A patient is named on their appointments: a role left open is for staff to fill, so that a patient's reply reaches only an appointment they are on.
  if (at < 0 && !actor?.startsWith('Patient/')) at = participants.findIndex((p) => p.actor === undefined && sharesCoding(p.type ?? [], response.participantType ?? []));
  if (at < 0) {
    const who = response.actor?.reference ?? (response.participantType ?? []).flatMap((t) => t.coding ?? []).map((c) => c.code).join(', ');
    throw unprocessable(`${who || 'The responder'} is not a participant of Appointment/${appointmentId}`, 'AppointmentResponse.actor');
  }
  const participant: AppointmentParticipant = { ...participants[at], status: response.participantStatus as AppointmentParticipant['status'] };
  if (participant.actor === undefined && response.actor) participant.actor = response.actor;
  const next = participants.map((p, i) => (i === at ? participant : p));
  const confirmed =
    AWAITING_STATUSES.includes(appointment.status ?? '') &&
    appointment.start !== undefined &&
    appointment.end !== undefined &&
    next.every((p) => (p.required !== undefined && p.required !== 'required') || p.status === 'accepted');
  if (participant.status === participants[at].status && participant.actor === participants[at].actor && !confirmed) return undefined;
  return { ...appointment, participant: next, ...(confirmed ? { status: 'booked' } : {}) };
}

function sharesCoding(a: readonly CodeableConcept[], b: readonly CodeableConcept[]): boolean {
  const codes = new Set(a.flatMap((c) => c.coding ?? []).map((c) => `${c.system ?? ''}|${c.code ?? ''}`));
  return b.flatMap((c) => c.coding ?? []).some((c) => codes.has(`${c.system ?? ''}|${c.code ?? ''}`));
}
