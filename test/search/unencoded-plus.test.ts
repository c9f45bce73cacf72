import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * A client that leaves the '+' of a time zone unencoded (`date=…T10:00:00+02:00`) sends
 * a space by the rules of query strings. No date contains a space, so the server reads
 * it back as '+' in date search values, `_lastUpdated`, and history's `_since` and `_at`.
 */
let server: TestServer;
let observationId: string;
beforeAll(async () => {
  server = await startTestServer();
  const res = await fhirRequest('POST', `${server.base}/Observation`, {
    body: { resourceType: 'Observation', status: 'final', code: { text: 'plus' }, effectiveDateTime: '2021-05-01T10:00:00+02:00' },
  });
  observationId = res.body.id;
});
afterAll(async () => {
  await server.stop();
});

async function ids(query: string): Promise<string[]> {
  // The '+' stays literal in the request line: fetch does not encode it.
  const res = await fhirRequest('GET', `${server.base}/Observation?${query}`);
  expect(res.status).toBe(200);
  return (res.body.entry ?? []).map((e: { resource: { id: string } }) => e.resource.id);
}

test('a date search value with an unencoded + before its time zone matches as if it were encoded', async () => {
  expect(await ids('date=2021-05-01T10:00:00+02:00')).toEqual([observationId]);
  expect(await ids('date=2021-05-01T10:00:00%2B02:00')).toEqual([observationId]);
  // 10:00+02:00 is 08:00Z: an hour earlier in that zone is before it, an hour later after it.
  expect(await ids('date=gt2021-05-01T09:00:00+02:00')).toEqual([observationId]);
  expect(await ids('date=gt2021-05-01T11:00:00+02:00')).toEqual([]);
});

test('_lastUpdated and history _since take an unencoded + too', async () => {
  expect(await ids('_lastUpdated=gt2020-01-01T00:00:00+01:00')).toEqual([observationId]);
  const history = await fhirRequest('GET', `${server.base}/Observation/${observationId}/_history?_since=2020-01-01T00:00:00+01:00`);
  expect(history.status).toBe(200);
  expect(history.body.entry).toHaveLength(1);
  const at = await fhirRequest('GET', `${server.base}/Observation/_history?_at=2999-01-01T00:00:00+01:00`);
  expect(at.status).toBe(200);
});

test('a space anywhere else in a date is still a 400', async () => {
  const res = await fhirRequest('GET', `${server.base}/Observation?date=2021-05-01 10:00`);
  expect(res.status).toBe(400);
});
