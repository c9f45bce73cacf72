import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

/** Requests refused before any interaction ran (no token, bad token, no route, unreadable body) still leave an AuditEvent. */
let server: TestServer;
let system: string;

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  system = await mintToken(server, { scope: 'system/*.*' });
});
afterAll(async () => {
  await server?.stop();
});

const failures = async (): Promise<any[]> => {
  const res = await fhirRequest('GET', `${server.base}/AuditEvent?outcome=4&_count=100`, { headers: { Authorization: `Bearer ${system}` } });
  expect(res.status).toBe(200);
  return (res.body.entry ?? []).map((e: any) => e.resource);
};

test('no token and a bad token: 401, each recorded with the resource asked for, the address and no user', async () => {
  expect((await fhirRequest('GET', `${server.base}/Patient/refused-without-token`)).status).toBe(401);
  expect((await fhirRequest('GET', `${server.base}/Patient/refused-bad-token`, { headers: { Authorization: 'Bearer not.a.token' } })).status).toBe(401);
  const events = await failures();
  for (const id of ['refused-without-token', 'refused-bad-token']) {
    const event = events.find((e) => e.entity?.some((x: any) => x.what?.reference === `Patient/${id}`));
    expect(event).toBeDefined();
    expect(event.action).toBe('R');
    expect(event.subtype[0].code).toBe('read');
    expect(event.agent[0].who.display).toBe('anonymous');
    expect(event.agent[0].network.address).toBeDefined();
  }
});

test('a path with no route (404), a method not allowed (405) and a malformed body (400) are recorded too', async () => {
  const auth = { Authorization: `Bearer ${system}` };
  expect((await fhirRequest('GET', `${server.base}/NoSuchType/x`, { headers: auth })).status).toBe(404);
  expect((await fhirRequest('DELETE', `${server.base}/metadata`, { headers: auth })).status).toBe(405);
  expect((await fhirRequest('POST', `${server.base}/Patient`, { rawBody: '{"resourceType":', headers: { ...auth, 'Content-Type': 'application/fhir+json' } })).status).toBe(400);
  const descriptions = (await failures()).map((e) => `${e.action} ${e.outcomeDesc}`);
  expect(descriptions).toEqual(
    expect.arrayContaining([expect.stringMatching(/^R .*NoSuchType/), expect.stringMatching(/^D /), expect.stringMatching(/^C /)])
  );
  // The client is named where its token was read (not on /metadata, which is open without one).
  const mine = (await failures()).filter((e) => e.agent.some((a: any) => a.who?.identifier?.value === 'test-client')).map((e) => e.action).sort();
  expect(mine).toEqual(['C', 'R']);
});

test('text a refused request carries that PostgreSQL cannot store (an unpaired surrogate in a property name, NUL in the URL) is recorded as U+FFFD', async () => {
  const auth = { Authorization: `Bearer ${system}` };
  const badKey = await fhirRequest('POST', `${server.base}/Patient`, { rawBody: '{"resourceType":"Patient","nick\\ud800name":"x"}', headers: { ...auth, 'Content-Type': 'application/fhir+json' } });
  expect(badKey.status).toBe(400);
  expect((await fhirRequest('GET', `${server.base}/Patient/nul%00id`, { headers: auth })).status).toBe(400);
  const events = await failures();
  expect(events.some((e) => typeof e.outcomeDesc === 'string' && e.outcomeDesc.includes('nick\uFFFDname'))).toBe(true);
  const nulRefusal = events.find((e) => e.entity?.some((x: any) => x.what?.reference === 'Patient/nul\uFFFDid'));
  expect(nulRefusal?.outcome).toBe('4');
});
