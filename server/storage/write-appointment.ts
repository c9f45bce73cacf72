import type { Appointment, AppointmentParticipant } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { conflict } from '../core/outcome';
import { normalizeReference } from '../search/reference-parameter';
import type { Db } from './sql';
import type { WriteCompanion, WriteOperation, WriteResult } from './write-resource';

type Write = (db: Db, op: WriteOperation, companion?: WriteCompanion) => Promise<WriteResult>;

/**
 * Statuses in which an appointment holds its time and its slots (appointment.html,
 * AppointmentStatus): proposed and waitlisted ones do not yet, cancelled, no-show and
 * entered-in-error ones no longer do.
 */
export const HOLDING_STATUSES: readonly string[] = ['pending', 'booked', 'arrived', 'fulfilled', 'checked-in'];
/** Slots that cannot be booked whatever the appointments say. */
const UNBOOKABLE_SLOTS = ['busy-unavailable', 'entered-in-error'];
/** First key of the two-key advisory locks of bookings (any fixed number no other lock uses). */
const BOOKING_LOCK_SPACE = 740_115;

/**
 * No double booking (docs/scheduling.md). An Appointment that holds time (HOLDING_STATUSES)
 * is refused with 409 when another one that holds time books one of its slots, or shares
 * a participant with it (neither of them declined, nor there for information only) at
 * an overlapping time, or when one of its slots is busy-unavailable or entered in error.
 *
 * Checked and written in one transaction, after a transaction-level advisory lock on
 * each slot and participant it names (in one order, so that two bookings cannot
 * deadlock): of two bookings racing for the same slot or the same practitioner's hour,
 * in any processes, the second sees the first once it commits, and is refused.
 * References are compared normalised as search indexes them (`Type/id`; an absolute
 * URL as written).
 */
export async function writeAppointment(db: Db, op: WriteOperation, write: Write, companion?: WriteCompanion): Promise<WriteResult> {
  const appointment = op.resource as Appointment | undefined;
  if (!appointment || !HOLDING_STATUSES.includes(appointment.status ?? '')) return write(db, op, companion);
  const apply = async (tx: Knex.Transaction): Promise<WriteResult> => {
    const slots = referencesOf(appointment.slot ?? []);
    const actors = attending(appointment.participant ?? []);
    for (const key of [...new Set([...slots.map((s) => `slot ${s}`), ...actors.map((a) => `actor ${a}`)])].sort()) {
      await tx.raw('SELECT pg_advisory_xact_lock(?, hashtext(?))', [BOOKING_LOCK_SPACE, key]);
    }
    await refuseConflicts(tx, op.id, appointment, slots, actors);
    return write(tx, op, companion);
  };
  return db.isTransaction ? apply(db as Knex.Transaction) : (db as Knex).transaction(apply);
}

async function refuseConflicts(tx: Knex.Transaction, id: string, appointment: Appointment, slots: string[], actors: string[]): Promise<void> {
  if (slots.length > 0) {
    const slotIds = slots.map((s) => /^Slot\/(.+)$/.exec(s)?.[1]).filter((s): s is string => s !== undefined);
    const unbookable: { id: string; status: string }[] = (
      await tx.raw(`SELECT id, content->>'status' AS status FROM "Slot" WHERE id = ANY(?) AND NOT deleted AND content->>'status' = ANY(?)`, [slotIds, UNBOOKABLE_SLOTS])
    ).rows;
    if (unbookable.length > 0) throw conflict(`Slot/${unbookable[0].id} cannot be booked: it is ${unbookable[0].status}`);
  }
  if (slots.length === 0 && actors.length === 0) return;
  const others: { id: string; content: Appointment }[] = (
    await tx.raw(
      `SELECT id, content FROM "Appointment"
        WHERE NOT deleted AND id <> ? AND content->>'status' = ANY(?) AND ("__slot" && ?::text[] OR "__actor" && ?::text[])`,
      [id, [...HOLDING_STATUSES], slots, actors]
    )
  ).rows;
  const start = instant(appointment.start);
  const end = instant(appointment.end);
  for (const other of others) {
    const shared = referencesOf(other.content.slot ?? []).find((s) => slots.includes(s));
    if (shared) throw conflict(`${shared} is already booked by another appointment`);
    const otherStart = instant(other.content.start);
    const otherEnd = instant(other.content.end);
    // Without times (a slot-only booking) there is no overlap to judge: slots decided above.
    if (start === undefined || end === undefined || otherStart === undefined || otherEnd === undefined) continue;
    if (!(start < otherEnd && otherStart < end)) continue;
    const busy = attending(other.content.participant ?? []).find((a) => actors.includes(a));
    if (busy) throw conflict(`${busy} already has an appointment from ${other.content.start} to ${other.content.end}`);
  }
}

/** The participants whose time the appointment takes: not declined, not there for information only. */
function attending(participants: readonly AppointmentParticipant[]): string[] {
  return referencesOf(participants.filter((p) => p.status !== 'declined' && p.required !== 'information-only').map((p) => p.actor ?? {}));
}

function referencesOf(references: readonly { reference?: string }[]): string[] {
  return [...new Set(references.map((r) => (r.reference ? normalizeReference(r.reference) : undefined)).filter((r): r is string => r !== undefined))];
}

function instant(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
