import type { Appointment, AppointmentParticipant, Slot } from '@medplum/fhirtypes';
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
 * Its slots then show it: a `free` Slot becomes `busy` (`busy-tentative` while the
 * appointment is pending), and a Slot it no longer holds (cancelled, moved, deleted) is
 * `free` again once no other appointment holds it: `Slot?status=free` is the slot checker.
 *
 * Checked and written in one transaction, after a transaction-level advisory lock on
 * each slot and participant it names (in one order, so that two bookings cannot
 * deadlock): of two bookings racing for the same slot or the same practitioner's hour,
 * in any processes, the second sees the first once it commits, and is refused. Slots are
 * written through the same write path (versioned, indexed, in the same transaction).
 * References are compared normalised as search indexes them (`Type/id`; an absolute
 * URL as written).
 */
export async function writeAppointment(db: Db, op: WriteOperation, write: Write, companion?: WriteCompanion): Promise<WriteResult> {
  const apply = async (tx: Knex.Transaction): Promise<WriteResult> => {
    const appointment = op.method === 'DELETE' ? undefined : (op.resource as Appointment | undefined);
    const previous: Appointment | undefined = (await tx.raw(`SELECT content FROM "Appointment" WHERE id = ? AND NOT deleted`, [op.id])).rows[0]?.content;
    const holding = appointment !== undefined && holds(appointment);
    const slots = holding ? referencesOf(appointment.slot ?? []) : [];
    const actors = holding ? attending(appointment.participant ?? []) : [];
    const released = previous && holds(previous) ? referencesOf(previous.slot ?? []).filter((s) => !slots.includes(s)) : [];
    const keys = [...new Set([...[...slots, ...released].map((s) => `slot ${s}`), ...actors.map((a) => `actor ${a}`)])].sort();
    for (const key of keys) await tx.raw('SELECT pg_advisory_xact_lock(?, hashtext(?))', [BOOKING_LOCK_SPACE, key]);
    if (holding) await refuseConflicts(tx, op.id, appointment, slots, actors);
    const result = await write(tx, op, companion);
    if (holding) for (const slot of slots) await setSlotStatus(tx, write, slot, (status) => (['free', 'busy', 'busy-tentative'].includes(status) ? slotStatusFor(appointment) : undefined));
    for (const slot of released) {
      if (await heldByAnother(tx, op.id, slot)) continue;
      await setSlotStatus(tx, write, slot, (status) => (status === 'busy' || status === 'busy-tentative' ? 'free' : undefined));
    }
    return result;
  };
  return db.isTransaction ? apply(db as Knex.Transaction) : (db as Knex).transaction(apply);
}

function holds(appointment: Appointment): boolean {
  return HOLDING_STATUSES.includes(appointment.status ?? '');
}

/** What a slot an appointment holds shows: tentative while the participants have not all accepted. */
function slotStatusFor(appointment: Appointment): 'busy' | 'busy-tentative' {
  return appointment.status === 'pending' ? 'busy-tentative' : 'busy';
}

/** Writes the Slot (`Slot/id`) with the status `next` gives for its current one, when that is another; a Slot that is not here is left alone. */
async function setSlotStatus(tx: Knex.Transaction, write: Write, slot: string, next: (status: string) => string | undefined): Promise<void> {
  const id = /^Slot\/(.+)$/.exec(slot)?.[1];
  if (!id) return;
  const row: { content: Slot; version_id: number } | undefined = (await tx.raw(`SELECT content, version_id FROM "Slot" WHERE id = ? AND NOT deleted FOR UPDATE`, [id])).rows[0];
  if (!row) return;
  const status = next(row.content.status ?? '');
  if (status === undefined || status === row.content.status) return;
  await write(tx, { method: 'PUT', resourceType: 'Slot', id, resource: { ...row.content, status } as Slot, ifMatch: row.version_id });
}

async function heldByAnother(tx: Knex.Transaction, id: string, slot: string): Promise<boolean> {
  const { rows } = await tx.raw(`SELECT 1 FROM "Appointment" WHERE NOT deleted AND id <> ? AND content->>'status' = ANY(?) AND "__slot" && ?::text[] LIMIT 1`, [id, [...HOLDING_STATUSES], [slot]]);
  return rows.length > 0;
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
