import { readFileSync } from 'node:fs';
import path from 'node:path';
import { HL7_EXAMPLES_DIR } from '../support/hl7-examples';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * A participant's reply (AppointmentResponse) sets that participant's status in the
 * Appointment it answers, in the same transaction; once every required participant has
 * accepted, a proposed or pending Appointment is booked, under booking's rules
 * (docs/scheduling.md, "Replies").
 */
let server: TestServer;
let n = 0;

beforeAll(async () => {
  server = await startTestServer();
}, 60000);

afterAll(async () => {
  await server?.stop();
});

function example(name: string): Record<string, any> {
  const resource = JSON.parse(readFileSync(path.join(HL7_EXAMPLES_DIR, name), 'utf8'));
  delete resource.text;
  return resource;
}

/** A fresh doctor, patient and slot per test, so that tests do not collide with each other. */
async function setting(): Promise<{ doctor: string; patient: string; slot: string; start: string; end: string }> {
  n++;
  const slot = `Slot/reply-${n}`;
  const start = `2031-02-${String(n).padStart(2, '0')}T09:00:00Z`;
  const end = `2031-02-${String(n).padStart(2, '0')}T09:30:00Z`;
  const put = await fhirRequest('PUT', `${server.base}/${slot}`, { body: { resourceType: 'Slot', id: `reply-${n}`, schedule: { reference: 'Schedule/s' }, status: 'free', start, end } });
  expect(put.status).toBe(201);
  return { doctor: `Practitioner/reply-doc-${n}`, patient: `Patient/reply-pat-${n}`, slot, start, end };
}

async function create(body: Record<string, unknown>): Promise<{ status: number; body: any }> {
  return fhirRequest('POST', `${server.base}/${body.resourceType}`, { body });
}

async function read(reference: string): Promise<any> {
  const res = await fhirRequest('GET', `${server.base}/${reference}`);
  expect(res.status).toBe(200);
  return res.body;
}

function reply(appointment: string, actor: string, participantStatus: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { resourceType: 'AppointmentResponse', appointment: { reference: appointment }, actor: { reference: actor }, participantStatus, ...extra };
}

function statusOf(appointment: any, actor: string): string | undefined {
  return appointment.participant.find((p: any) => p.actor?.reference === actor)?.status;
}

async function pendingAppointment(s: { doctor: string; patient: string; slot: string; start: string; end: string }, extra: Record<string, unknown> = {}): Promise<string> {
  const created = await create({
    resourceType: 'Appointment',
    status: 'pending',
    start: s.start,
    end: s.end,
    slot: [{ reference: s.slot }],
    participant: [
      { actor: { reference: s.patient }, required: 'required', status: 'needs-action' },
      { actor: { reference: s.doctor }, status: 'needs-action' },
    ],
    ...extra,
  });
  expect(created.status).toBe(201);
  return `Appointment/${created.body.id}`;
}

test("HL7's example reply fills the attending participant named only by type, and records the reply as its status", async () => {
  const request = example('Appointment-examplereq.json');
  const id = `examplereq-${Date.now()}`;
  expect((await fhirRequest('PUT', `${server.base}/Appointment/${id}`, { body: { ...request, id } })).status).toBe(201);
  const response = example('AppointmentResponse-exampleresp.json');
  delete response.id;
  response.appointment.reference = `Appointment/${id}`;
  expect((await create(response)).status).toBe(201);

  const appointment = await read(`Appointment/${id}`);
  expect(appointment.meta.versionId).toBe('2');
  const attending = appointment.participant.find((p: any) => p.type?.[0]?.coding?.[0]?.code === 'ATND');
  expect(attending.actor.reference).toBe(response.actor.reference);
  expect(attending.status).toBe('tentative');
  // Its other participants, and its status (no times yet: it cannot be booked), are as they were.
  expect(statusOf(appointment, 'Patient/example')).toBe('needs-action');
  expect(appointment.status).toBe('proposed');
});

test('the appointment is booked when the last required participant accepts, and its slot turns from busy-tentative to busy', async () => {
  const s = await setting();
  const appointment = await pendingAppointment(s);
  expect((await read(s.slot)).status).toBe('busy-tentative');

  expect((await create(reply(appointment, s.patient, 'accepted'))).status).toBe(201);
  let current = await read(appointment);
  expect(statusOf(current, s.patient)).toBe('accepted');
  expect(current.status).toBe('pending');

  // The doctor's participant has no `required`, which counts as required.
  expect((await create(reply(appointment, s.doctor, 'accepted'))).status).toBe(201);
  current = await read(appointment);
  expect(statusOf(current, s.doctor)).toBe('accepted');
  expect(current.status).toBe('booked');
  expect((await read(s.slot)).status).toBe('busy');
});

test('optional and information-only participants do not hold the booking back', async () => {
  const s = await setting();
  const appointment = await pendingAppointment(s, {
    participant: [
      { actor: { reference: s.patient }, required: 'required', status: 'needs-action' },
      { actor: { reference: s.doctor }, required: 'required', status: 'accepted' },
      { actor: { reference: `RelatedPerson/reply-${n}` }, required: 'optional', status: 'needs-action' },
      { actor: { reference: `Practitioner/reply-gp-${n}` }, required: 'information-only', status: 'needs-action' },
    ],
  });
  expect((await create(reply(appointment, s.patient, 'accepted'))).status).toBe(201);
  expect((await read(appointment)).status).toBe('booked');
});

test("a tentative reply or a decline records the participant's status and leaves the appointment pending; a later accept (an update of the reply) books it", async () => {
  const s = await setting();
  const appointment = await pendingAppointment(s, {
    participant: [
      { actor: { reference: s.patient }, required: 'required', status: 'accepted' },
      { actor: { reference: s.doctor }, required: 'required', status: 'needs-action' },
    ],
  });
  const tentative = await create(reply(appointment, s.doctor, 'tentative'));
  expect(tentative.status).toBe(201);
  expect(statusOf(await read(appointment), s.doctor)).toBe('tentative');
  expect((await read(appointment)).status).toBe('pending');

  const declined = await fhirRequest('PUT', `${server.base}/AppointmentResponse/${tentative.body.id}`, { body: { ...tentative.body, participantStatus: 'declined' } });
  expect(declined.status).toBe(200);
  expect(statusOf(await read(appointment), s.doctor)).toBe('declined');
  expect((await read(appointment)).status).toBe('pending');

  const accepted = await fhirRequest('PUT', `${server.base}/AppointmentResponse/${tentative.body.id}`, { body: { ...declined.body, participantStatus: 'accepted' } });
  expect(accepted.status).toBe(200);
  expect((await read(appointment)).status).toBe('booked');
});

test('a reply from someone who is not a participant is a 422, and neither the reply nor the appointment is written', async () => {
  const s = await setting();
  const appointment = await pendingAppointment(s);
  const stranger = await create(reply(appointment, `Practitioner/stranger-${n}`, 'accepted'));
  expect(stranger.status).toBe(422);
  expect(stranger.body.resourceType).toBe('OperationOutcome');
  expect(stranger.body.issue[0].diagnostics).toContain(`Practitioner/stranger-${n}`);
  expect((await read(appointment)).meta.versionId).toBe('1');
  const stored = await fhirRequest('GET', `${server.base}/AppointmentResponse?appointment=${appointment}`);
  expect(stored.body.total ?? stored.body.entry?.length ?? 0).toBe(0);
});

test('an acceptance that would double-book the doctor is refused with 409, and nothing of it is written', async () => {
  const s = await setting();
  const appointment = await pendingAppointment(s, {
    slot: undefined,
    participant: [
      { actor: { reference: s.patient }, required: 'required', status: 'accepted' },
      // Declined for now: the doctor's time is not taken by this appointment yet.
      { actor: { reference: s.doctor }, required: 'required', status: 'declined' },
    ],
  });
  const other = await create({
    resourceType: 'Appointment',
    status: 'booked',
    start: s.start,
    end: s.end,
    participant: [
      { actor: { reference: s.doctor }, status: 'accepted' },
      { actor: { reference: `Patient/reply-other-${n}` }, status: 'accepted' },
    ],
  });
  expect(other.status).toBe(201);

  const accept = await create(reply(appointment, s.doctor, 'accepted'));
  expect(accept.status).toBe(409);
  expect(accept.body.issue[0].diagnostics).toContain(s.doctor);
  const current = await read(appointment);
  expect(current.meta.versionId).toBe('1');
  expect(statusOf(current, s.doctor)).toBe('declined');
  const stored = await fhirRequest('GET', `${server.base}/AppointmentResponse?actor=${s.doctor}`);
  expect(stored.body.entry ?? []).toHaveLength(0);
});

test('two participants accepting at the same moment both count: the appointment ends booked with both accepted', async () => {
  const s = await setting();
  const appointment = await pendingAppointment(s);
  const [a, b] = await Promise.all([create(reply(appointment, s.patient, 'accepted')), create(reply(appointment, s.doctor, 'accepted'))]);
  expect([a.status, b.status]).toEqual([201, 201]);
  const current = await read(appointment);
  expect(statusOf(current, s.patient)).toBe('accepted');
  expect(statusOf(current, s.doctor)).toBe('accepted');
  expect(current.status).toBe('booked');
});

test('in a transaction, a reply to an appointment created by the same Bundle applies, whatever the entry order', async () => {
  const s = await setting();
  const bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { fullUrl: 'urn:uuid:6b3f1c1e-0000-4000-8000-000000000002', resource: reply('urn:uuid:6b3f1c1e-0000-4000-8000-000000000001', s.doctor, 'accepted'), request: { method: 'POST', url: 'AppointmentResponse' } },
      {
        fullUrl: 'urn:uuid:6b3f1c1e-0000-4000-8000-000000000001',
        resource: {
          resourceType: 'Appointment',
          status: 'pending',
          start: s.start,
          end: s.end,
          participant: [
            { actor: { reference: s.patient }, required: 'required', status: 'accepted' },
            { actor: { reference: s.doctor }, required: 'required', status: 'needs-action' },
          ],
        },
        request: { method: 'POST', url: 'Appointment' },
      },
    ],
  };
  const res = await fhirRequest('POST', server.base, { body: bundle });
  expect(res.status).toBe(200);
  const location: string = res.body.entry[1].response.location;
  const current = await read(/(Appointment\/[^/]+)\/_history\//.exec(location)![1]);
  expect(statusOf(current, s.doctor)).toBe('accepted');
  expect(current.status).toBe('booked');
});

test('a reply to an appointment not stored here is stored as it is', async () => {
  const res = await create(reply('Appointment/not-here', 'Patient/whoever', 'accepted'));
  expect(res.status).toBe(201);
});

test('a patient cannot take a role left open on an appointment they are not on', async () => {
  const s = await setting();
  const appointment = await pendingAppointment(s, {
    participant: [
      { actor: { reference: s.patient }, required: 'required', status: 'needs-action' },
      { type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'ATND' }] }], required: 'required', status: 'needs-action' },
    ],
  });
  const res = await create(reply(appointment, `Patient/reply-intruder-${n}`, 'accepted', { participantType: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'ATND' }] }] }));
  expect(res.status).toBe(422);
  expect((await read(appointment)).participant[1].actor).toBeUndefined();
});
