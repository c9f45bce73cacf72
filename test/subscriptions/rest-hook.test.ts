import http from 'node:http';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/** R4 Subscription with a rest-hook channel (https://hl7.org/fhir/R4/subscription.html). */

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let server: TestServer;
let receiver: http.Server;
let hook: string;
const received: Received[] = [];
/** Status the receiver answers, per path. */
const answers = new Map<string, number>();

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body });
      res.statusCode = answers.get(req.url ?? '') ?? 200;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  hook = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  server = await startTestServer({ SEARCH_PARAMETER_REFRESH_MS: '100' });
});
afterAll(async () => {
  await server.stop();
  await new Promise((r) => receiver.close(r));
});

const PULSE = { system: 'http://loinc.org', code: '8867-4' };

function subscription(path: string, more: Record<string, unknown> = {}, channel: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    resourceType: 'Subscription',
    status: 'requested',
    reason: 'test',
    criteria: 'Observation?code=http://loinc.org|8867-4',
    channel: { type: 'rest-hook', endpoint: `${hook}${path}`, payload: 'application/fhir+json', header: ['Authorization: Bearer s3cret'], ...channel },
    ...more,
  };
}

async function until<T>(what: () => T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = what();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const observation = (code: { system: string; code: string }) => ({ resourceType: 'Observation', status: 'final', code: { coding: [code] } });

test('a Subscription written as requested is stored active, and each matching write is POSTed to its endpoint with its headers and the resource', async () => {
  const created = await fhirRequest('POST', `${server.base}/Subscription`, { body: subscription('/full') });
  expect(created.status).toBe(201);
  expect(created.body.status).toBe('active');
  const other = await fhirRequest('POST', `${server.base}/Observation`, { body: observation({ system: 'http://loinc.org', code: '2339-0' }) });
  const pulse = await fhirRequest('POST', `${server.base}/Observation`, { body: observation(PULSE) });
  const notification = await until(() => received.find((r) => r.path === '/full'));
  expect(notification.headers.authorization).toBe('Bearer s3cret');
  expect(notification.headers['content-type']).toBe('application/fhir+json');
  expect(JSON.parse(notification.body)).toEqual(pulse.body);
  // The update is a new version: notified again, with that version.
  const updated = await fhirRequest('PUT', `${server.base}/Observation/${pulse.body.id}`, { body: { ...pulse.body, status: 'amended' } });
  const second = await until(() => received.filter((r) => r.path === '/full')[1]);
  expect(JSON.parse(second.body)).toEqual(updated.body);
  await new Promise((r) => setTimeout(r, 500));
  expect(received.filter((r) => r.path === '/full').map((r) => JSON.parse(r.body).id)).not.toContain(other.body.id);
});

test('with an XML payload type the notification carries the resource in FHIR XML', async () => {
  await fhirRequest('POST', `${server.base}/Subscription`, { body: subscription('/xml', {}, { payload: 'application/fhir+xml', header: undefined }) });
  const pulse = await fhirRequest('POST', `${server.base}/Observation`, { body: observation(PULSE) });
  const notification = await until(() => received.find((r) => r.path === '/xml' && r.body.includes(pulse.body.id)));
  expect(notification.headers['content-type']).toBe('application/fhir+xml');
  expect(notification.body).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?><Observation xmlns="http:\/\/hl7.org\/fhir"><id value="/);
  // FHIR.js, not our reader, reads it back.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Fhir } = require('fhir') as { Fhir: new () => { xmlToJson(xml: string): string } };
  expect(JSON.parse(new Fhir().xmlToJson(notification.body))).toEqual(pulse.body);
});

test('without a payload type the notification is an empty POST; an ended Subscription is not notified', async () => {
  await fhirRequest('POST', `${server.base}/Subscription`, { body: subscription('/empty', {}, { payload: undefined, header: undefined }) });
  await fhirRequest('POST', `${server.base}/Subscription`, { body: subscription('/ended', { end: '2020-01-01T00:00:00Z' }) });
  await fhirRequest('POST', `${server.base}/Observation`, { body: observation(PULSE) });
  const notification = await until(() => received.find((r) => r.path === '/empty'));
  expect(notification.body).toBe('');
  await new Promise((r) => setTimeout(r, 500));
  expect(received.some((r) => r.path === '/ended')).toBe(false);
});

test('criteria this server cannot search, another channel type, or an endpoint that is not http(s) are 422', async () => {
  for (const body of [
    subscription('/x', { criteria: 'Wizard?name=merlin' }),
    subscription('/x', { criteria: 'Observation?colour=blue' }),
    // websocket is a channel of its own (websocket.test.ts); email, sms and message are not served.
    subscription('/x', {}, { type: 'sms', endpoint: 'tel:+123' }),
    subscription('/x', {}, { endpoint: 'ftp://example.org/hook' }),
    subscription('/x', {}, { payload: 'text/turtle' }),
  ]) {
    const res = await fhirRequest('POST', `${server.base}/Subscription`, { body });
    expect(res.status).toBe(422);
    expect(res.body.resourceType).toBe('OperationOutcome');
  }
});

test('a failing endpoint is retried with backoff, and after the last attempt the Subscription is set to error', async () => {
  answers.set('/failing', 503);
  const created = await fhirRequest('POST', `${server.base}/Subscription`, { body: subscription('/failing') });
  await fhirRequest('POST', `${server.base}/Observation`, { body: observation(PULSE) });
  await until(() => (received.filter((r) => r.path === '/failing').length >= 2 ? true : undefined), 15_000);
  const knex = server.server.knex;
  const queued = (await knex.raw('SELECT attempts, last_error FROM subscription_queue WHERE subscription_id = ?', [created.body.id])).rows;
  expect(queued[0].attempts).toBeGreaterThanOrEqual(1);
  expect(queued[0].last_error).toMatch(/503/);
  // Skip the backoff: the server's next attempt is its fifth and last.
  await knex.raw(`UPDATE subscription_queue SET attempts = 4, next_attempt_at = now() - interval '1 second' WHERE subscription_id = ?`, [created.body.id]);
  const deadline = Date.now() + 15_000;
  while ((await fhirRequest('GET', `${server.base}/Subscription/${created.body.id}`)).body.status !== 'error' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const after = await fhirRequest('GET', `${server.base}/Subscription/${created.body.id}`);
  expect(after.body.status).toBe('error');
  expect(after.body.error).toMatch(/503/);
  expect((await knex.raw('SELECT count(*)::int AS n FROM subscription_queue WHERE subscription_id = ?', [created.body.id])).rows[0].n).toBe(0);
});

test("the notification is queued in the write's own transaction: a transaction that rolls back notifies nothing", async () => {
  await fhirRequest('POST', `${server.base}/Subscription`, { body: subscription('/tx') });
  const tagged = (value: string) => ({ ...observation(PULSE), identifier: [{ system: 'urn:test', value }] });
  const failed = await fhirRequest('POST', server.base, {
    body: {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: tagged('rolled-back'), request: { method: 'POST', url: 'Observation' } },
        { resource: { resourceType: 'Observation', status: 'not-a-status', code: { text: 'x' } }, request: { method: 'POST', url: 'Observation' } },
      ],
    },
  });
  expect(failed.status).toBe(400);
  await fhirRequest('POST', `${server.base}/Observation`, { body: tagged('committed') });
  // Delivered in the order queued: once the later write's notification is in, an earlier one would be too.
  await until(() => received.find((r) => r.path === '/tx' && r.body.includes('committed')));
  expect(received.filter((r) => r.path === '/tx' && r.body.includes('rolled-back'))).toEqual([]);
});

test('the queueing trigger is on only while some Subscription is active: turning the last one off switches it off', async () => {
  const knex = server.server.knex;
  const enabled = async (): Promise<boolean> =>
    (await knex.raw(`SELECT tgenabled <> 'D' AS on FROM pg_trigger WHERE tgname = 'fhir_subscription_enqueue'`)).rows[0].on;
  expect(await enabled()).toBe(true);
  const active = await fhirRequest('GET', `${server.base}/Subscription?status=active&_count=100`);
  for (const entry of active.body.entry ?? []) {
    expect((await fhirRequest('PUT', `${server.base}/Subscription/${entry.resource.id}`, { body: { ...entry.resource, status: 'off' } })).status).toBe(200);
  }
  expect(await enabled()).toBe(false);
  const before = (await knex.raw('SELECT count(*)::int AS n FROM subscription_queue')).rows[0].n;
  await fhirRequest('POST', `${server.base}/Observation`, { body: observation(PULSE) });
  expect((await knex.raw('SELECT count(*)::int AS n FROM subscription_queue')).rows[0].n).toBeLessThanOrEqual(before);
  const again = await fhirRequest('POST', `${server.base}/Subscription`, { body: subscription('/again') });
  expect(again.body.status).toBe('active');
  expect(await enabled()).toBe(true);
});
