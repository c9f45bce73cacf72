import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * No double booking (docs/scheduling.md): an Appointment that holds time is refused with
 * 409 when another one holding time books the same Slot or takes a shared participant
 * at an overlapping time, whichever way it is written (create, update, patch,
 * transaction, batch) and however many clients race for it.
 */
let server: TestServer;
let n = 0;

beforeAll(async () => {
  server = await startTestServer();
  for (const [id, status] of [
    ['open', 'free'],
    ['open-2', 'free'],
    ['closed', 'busy-unavailable'],
  ]) {
    expect((await fhirRequest('PUT', `${server.base}/Slot/${id}`, { body: { resourceType: 'Slot', id, schedule: { reference: 'Schedule/s' }, status, start: '2030-01-01T09:00:00Z', end: '2030-01-01T09:30:00Z' } })).status).toBeLessThan(300);
  }
}, 60000);

afterAll(async () => {
  await server?.stop();
});

/** A fresh practitioner and patient per test, so that tests do not collide with each other. */
function people(): { doctor: string; patient: string; other: string } {
  n++;
  return { doctor: `Practitioner/doc-${n}`, patient: `Patient/pat-${n}`, other: `Patient/other-${n}` };
}

function appointment(start: string, end: string, actors: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    resourceType: 'Appointment',
    status: 'booked',
    start,
    end,
    participant: actors.map((reference) => ({ actor: { reference }, status: 'accepted' })),
    ...extra,
  };
}

async function post(body: Record<string, unknown>): Promise<{ status: number; body: any }> {
  return fhirRequest('POST', `${server.base}/Appointment`, { body });
}

test('a second booking of a booked slot is a 409 naming the slot, and is accepted once the first is cancelled', async () => {
  const { doctor, patient, other } = people();
  const first = await post(appointment('2030-01-01T09:00:00Z', '2030-01-01T09:30:00Z', [doctor, patient], { slot: [{ reference: 'Slot/open' }] }));
  expect(first.status).toBe(201);
  const second = await post(appointment('2030-01-01T09:00:00Z', '2030-01-01T09:30:00Z', [`Practitioner/someone-else-${n}`, other], { slot: [{ reference: 'Slot/open' }] }));
  expect(second.status).toBe(409);
  expect(second.body.resourceType).toBe('OperationOutcome');
  expect(second.body.issue[0].diagnostics).toContain('Slot/open');

  expect((await fhirRequest('PUT', `${server.base}/Appointment/${first.body.id}`, { body: { ...first.body, status: 'cancelled' } })).status).toBe(200);
  expect((await post(appointment('2030-01-01T09:00:00Z', '2030-01-01T09:30:00Z', [`Practitioner/someone-else-${n}`, other], { slot: [{ reference: 'Slot/open' }] }))).status).toBe(201);
});

test("a practitioner's overlapping appointment is a 409; back to back, another practitioner's, a declined participant's or a proposed one's are accepted", async () => {
  const { doctor, patient, other } = people();
  expect((await post(appointment('2030-02-01T10:00:00Z', '2030-02-01T10:30:00Z', [doctor, patient]))).status).toBe(201);
  const overlapping = await post(appointment('2030-02-01T10:15:00Z', '2030-02-01T10:45:00Z', [doctor, other]));
  expect(overlapping.status).toBe(409);
  expect(overlapping.body.issue[0].diagnostics).toContain(doctor);
  // The patient cannot be in two places either.
  expect((await post(appointment('2030-02-01T10:20:00Z', '2030-02-01T10:40:00Z', [`Practitioner/another-${n}`, patient]))).status).toBe(409);
  expect((await post(appointment('2030-02-01T10:30:00Z', '2030-02-01T11:00:00Z', [doctor, other]))).status).toBe(201);
  expect((await post(appointment('2030-02-01T10:00:00Z', '2030-02-01T10:30:00Z', [`Practitioner/another-${n}`, `Patient/third-${n}`]))).status).toBe(201);
  const declined = appointment('2030-02-01T10:00:00Z', '2030-02-01T10:30:00Z', [`Patient/fourth-${n}`]);
  (declined.participant as unknown[]).push({ actor: { reference: doctor }, status: 'declined' });
  expect((await post(declined)).status).toBe(201);
  const proposed = await post(appointment('2030-02-01T10:00:00Z', '2030-02-01T10:30:00Z', [doctor, `Patient/fifth-${n}`], { status: 'proposed' }));
  expect(proposed.status).toBe(201);
  // Booking the proposal is where the conflict is found, by update or by patch.
  expect((await fhirRequest('PUT', `${server.base}/Appointment/${proposed.body.id}`, { body: { ...proposed.body, status: 'booked' } })).status).toBe(409);
  const patched = await fhirRequest('PATCH', `${server.base}/Appointment/${proposed.body.id}`, {
    body: [{ op: 'replace', path: '/status', value: 'booked' }],
    headers: { 'Content-Type': 'application/json-patch+json' },
  });
  expect(patched.status).toBe(409);
  expect((await fhirRequest('GET', `${server.base}/Appointment/${proposed.body.id}`)).body.status).toBe('proposed');
});

async function slotStatus(id: string): Promise<string> {
  return (await fhirRequest('GET', `${server.base}/Slot/${id}`)).body.status;
}

test('booking makes a free slot busy (busy-tentative while pending); cancelling, moving to another slot or deleting the appointment frees it; the slot checker sees it', async () => {
  const { doctor, patient } = people();
  for (const id of [`a-${n}`, `b-${n}`]) {
    await fhirRequest('PUT', `${server.base}/Slot/${id}`, { body: { resourceType: 'Slot', id, schedule: { reference: `Schedule/checker-${n}` }, status: 'free', start: '2030-06-01T09:00:00Z', end: '2030-06-01T09:30:00Z' } });
  }
  const free = async (): Promise<string[]> => ((await fhirRequest('GET', `${server.base}/Slot?schedule=Schedule/checker-${n}&status=free`)).body.entry ?? []).map((e: any) => e.resource.id).sort();
  expect(await free()).toEqual([`a-${n}`, `b-${n}`]);
  const pending = await post(appointment('2030-06-01T09:00:00Z', '2030-06-01T09:30:00Z', [doctor, patient], { status: 'pending', slot: [{ reference: `Slot/a-${n}` }] }));
  expect(pending.status).toBe(201);
  expect(await slotStatus(`a-${n}`)).toBe('busy-tentative');
  const booked = await fhirRequest('PUT', `${server.base}/Appointment/${pending.body.id}`, { body: { ...pending.body, status: 'booked' } });
  expect(booked.status).toBe(200);
  expect(await slotStatus(`a-${n}`)).toBe('busy');
  expect(await free()).toEqual([`b-${n}`]);
  // Moved to the other slot: the first is free again.
  const moved = await fhirRequest('PUT', `${server.base}/Appointment/${pending.body.id}`, { body: { ...booked.body, slot: [{ reference: `Slot/b-${n}` }] } });
  expect(moved.status).toBe(200);
  expect([await slotStatus(`a-${n}`), await slotStatus(`b-${n}`)]).toEqual(['free', 'busy']);
  const cancelled = await fhirRequest('PUT', `${server.base}/Appointment/${pending.body.id}`, { body: { ...moved.body, status: 'cancelled' } });
  expect(cancelled.status).toBe(200);
  expect(await free()).toEqual([`a-${n}`, `b-${n}`]);
  const again = await post(appointment('2030-06-01T09:00:00Z', '2030-06-01T09:30:00Z', [doctor, patient], { slot: [{ reference: `Slot/a-${n}` }] }));
  expect(await slotStatus(`a-${n}`)).toBe('busy');
  expect((await fhirRequest('DELETE', `${server.base}/Appointment/${again.body.id}`)).status).toBeLessThan(300);
  expect(await slotStatus(`a-${n}`)).toBe('free');
  // Each change of a Slot is a version of it, as any write.
  expect((await fhirRequest('GET', `${server.base}/Slot/a-${n}/_history`)).body.entry.length).toBeGreaterThanOrEqual(6);
});

test('rescheduling an appointment does not conflict with itself', async () => {
  const { doctor, patient } = people();
  const booked = await post(appointment('2030-03-01T10:00:00Z', '2030-03-01T10:30:00Z', [doctor, patient], { slot: [{ reference: 'Slot/open-2' }] }));
  expect(booked.status).toBe(201);
  const moved = { ...booked.body, start: '2030-03-01T10:15:00Z', end: '2030-03-01T10:45:00Z' };
  expect((await fhirRequest('PUT', `${server.base}/Appointment/${booked.body.id}`, { body: moved })).status).toBe(200);
});

test('a slot that is busy-unavailable cannot be booked', async () => {
  const { doctor, patient } = people();
  const res = await post(appointment('2030-01-01T09:00:00Z', '2030-01-01T09:30:00Z', [doctor, patient], { slot: [{ reference: 'Slot/closed' }] }));
  expect(res.status).toBe(409);
  expect(res.body.issue[0].diagnostics).toContain('busy-unavailable');
});

test('a transaction booking the same time twice is refused whole; a batch books one and refuses the other', async () => {
  const { doctor, patient, other } = people();
  const entry = (actors: string[]) => ({
    request: { method: 'POST', url: 'Appointment' },
    resource: appointment('2030-04-01T10:00:00Z', '2030-04-01T10:30:00Z', actors),
  });
  const transaction = await fhirRequest('POST', server.base, { body: { resourceType: 'Bundle', type: 'transaction', entry: [entry([doctor, patient]), entry([doctor, other])] } });
  expect(transaction.status).toBe(409);
  expect((await fhirRequest('GET', `${server.base}/Appointment?actor=${doctor}`)).body.total).toBe(0);

  const batch = await fhirRequest('POST', server.base, { body: { resourceType: 'Bundle', type: 'batch', entry: [entry([doctor, patient]), entry([doctor, other])] } });
  expect(batch.status).toBe(200);
  // Batch entries are independent and may be processed at once: one of the two is booked, whichever came first.
  expect(batch.body.entry.map((e: { response: { status: string } }) => e.response.status.slice(0, 3)).sort()).toEqual(['201', '409']);
});

test('of twelve clients booking the same slot at once, exactly one succeeds; of twelve booking one practitioner at one hour, exactly one', async () => {
  const { doctor } = people();
  expect((await fhirRequest('PUT', `${server.base}/Slot/race-${n}`, { body: { resourceType: 'Slot', id: `race-${n}`, schedule: { reference: 'Schedule/s' }, status: 'free', start: '2030-05-01T09:00:00Z', end: '2030-05-01T09:30:00Z' } })).status).toBeLessThan(300);
  const bySlot = await Promise.all(
    Array.from({ length: 12 }, (_, i) => post(appointment('2030-05-01T09:00:00Z', '2030-05-01T09:30:00Z', [`Practitioner/racer-${n}-${i}`, `Patient/racer-${n}-${i}`], { slot: [{ reference: `Slot/race-${n}` }] })))
  );
  expect(bySlot.map((r) => r.status).sort()).toEqual([201, ...Array(11).fill(409)]);
  const byDoctor = await Promise.all(
    Array.from({ length: 12 }, (_, i) => post(appointment(`2030-05-02T09:0${i % 10}:00Z`, '2030-05-02T09:30:00Z', [doctor, `Patient/crowd-${n}-${i}`])))
  );
  expect(byDoctor.map((r) => r.status).sort()).toEqual([201, ...Array(11).fill(409)]);
}, 30000);
