import WebSocket from 'ws';
import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * Subscriptions of channel type websocket (R4 subscription.html): the client opens the
 * socket the CapabilityStatement names, binds to its Subscription, and is pinged each time
 * a resource matching the criteria changes; with AUTH_REQUIRED, only with a token that may
 * read the Subscription.
 */
let server: TestServer;
let admin: string;
const PULSE = { system: 'http://loinc.org', code: '8867-4' };
const open: WebSocket[] = [];

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true', SEARCH_PARAMETER_REFRESH_MS: '100' });
  admin = await mintToken(server, { scope: 'system/*.*' });
}, 60000);

afterAll(async () => {
  for (const ws of open) ws.terminate();
  await server?.stop();
});

const call = (method: string, path: string, body?: unknown, token = admin) => fhirRequest(method, `${server.base}${path}`, { body, headers: { Authorization: `Bearer ${token}` } });

async function socketUrl(): Promise<string> {
  const statement = (await fhirRequest('GET', `${server.base}/metadata`)).body;
  const extension = statement.rest[0].extension.find((e: any) => e.url === 'http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket');
  // PUBLIC_URL may name another host than the one the test server listens on: keep the path.
  return `${server.url.replace(/^http/, 'ws')}${new URL(extension.valueUri).pathname}`;
}

/** A socket and the messages it has received. */
async function connect(token?: string): Promise<{ ws: WebSocket; messages: string[] }> {
  const url = `${await socketUrl()}${token ? `?access_token=${token}` : ''}`;
  const ws = new WebSocket(url);
  open.push(ws);
  const messages: string[] = [];
  ws.on('message', (data) => messages.push(data.toString()));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, messages };
}

async function until(messages: string[], wanted: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!messages.includes(wanted)) {
    if (Date.now() > deadline) throw new Error(`no "${wanted}" in ${ms} ms; got ${JSON.stringify(messages)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function websocketSubscription(criteria: string): Promise<string> {
  const res = await call('POST', '/Subscription', { resourceType: 'Subscription', status: 'requested', reason: 'test', criteria, channel: { type: 'websocket' } });
  expect(res.status).toBe(201);
  expect(res.body.status).toBe('active');
  return res.body.id;
}

const observation = (code: { system: string; code: string }) => ({ resourceType: 'Observation', status: 'final', code: { coding: [code] } });

test('bind, bound, then a ping for each matching change and none for others', async () => {
  const id = await websocketSubscription(`Observation?code=${PULSE.system}|${PULSE.code}`);
  const { ws, messages } = await connect(admin);
  ws.send(`bind ${id}`);
  await until(messages, `bound ${id}`);

  expect((await call('POST', '/Observation', observation({ system: 'http://loinc.org', code: '2708-6' }))).status).toBe(201);
  const created = await call('POST', '/Observation', observation(PULSE));
  expect(created.status).toBe(201);
  await until(messages, `ping ${id}`);
  expect(messages.filter((m) => m === `ping ${id}`)).toHaveLength(1);
  expect((await call('PUT', `/Observation/${created.body.id}`, { ...created.body, status: 'amended' })).status).toBe(200);
  await until(messages, `ping ${id}`);
  const deadline = Date.now() + 10_000;
  while (messages.filter((m) => m === `ping ${id}`).length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(messages.filter((m) => m === `ping ${id}`)).toHaveLength(2);
});

test('two sockets bound to one Subscription are both pinged; a closed one is forgotten', async () => {
  const id = await websocketSubscription(`Observation?code=${PULSE.system}|${PULSE.code}`);
  const first = await connect(admin);
  const second = await connect(admin);
  first.ws.send(`bind ${id}`);
  second.ws.send(`bind ${id}`);
  await until(first.messages, `bound ${id}`);
  await until(second.messages, `bound ${id}`);
  second.ws.close();
  expect((await call('POST', '/Observation', observation(PULSE))).status).toBe(201);
  await until(first.messages, `ping ${id}`);
  expect(second.messages).not.toContain(`ping ${id}`);
});

test('a bind the token may not make, or to a Subscription that is not a websocket one, is an error; no token at all is a 401', async () => {
  const id = await websocketSubscription('Observation?status=final');
  const restHook = await call('POST', '/Subscription', { resourceType: 'Subscription', status: 'requested', reason: 'test', criteria: 'Observation?status=final', channel: { type: 'rest-hook', endpoint: 'http://127.0.0.1:9/hook' } });
  expect(restHook.status).toBe(201);
  const patientOnly = await mintToken(server, { scope: 'patient/Observation.rs', userId: 'u-ws', fhirUser: 'Patient/p-ws', role: 'patient', patient: 'p-ws' });
  const { ws, messages } = await connect(patientOnly);
  ws.send(`bind ${id}`);
  // Refused as not readable (403) or as not there for this token (404): either way, not bound.
  const deadline = Date.now() + 10_000;
  while (!messages.some((m) => m.startsWith(`error ${id} Subscription/${id} `)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(messages).toHaveLength(1);
  expect(messages[0]).toMatch(new RegExp(`^error ${id} Subscription/${id} (may not be read with this token|is not here)$`));
  const admins = await connect(admin);
  admins.ws.send(`bind ${restHook.body.id}`);
  admins.ws.send('bind does-not-exist');
  admins.ws.send('hello');
  await until(admins.messages, `error ${restHook.body.id} Subscription/${restHook.body.id} is not a websocket Subscription`);
  await until(admins.messages, 'error does-not-exist Subscription/does-not-exist is not here');
  await until(admins.messages, 'error expected "bind <Subscription id>"');

  const refused = new WebSocket(await socketUrl());
  open.push(refused);
  const status = await new Promise<number | undefined>((resolve) => {
    refused.once('unexpected-response', (_req, res) => resolve(res.statusCode));
    refused.once('open', () => resolve(101));
    refused.once('error', () => resolve(undefined));
  });
  expect(status).toBe(401);
});

test('the CapabilityStatement names the socket; Subscriptions of other channel types than rest-hook and websocket are still refused', async () => {
  expect(await socketUrl()).toMatch(/^ws:\/\/.*\/fhir\/websocket$/);
  const email = await call('POST', '/Subscription', { resourceType: 'Subscription', status: 'requested', reason: 'test', criteria: 'Observation?status=final', channel: { type: 'email', endpoint: 'mailto:a@example.org' } });
  expect(email.status).toBe(422);
});
