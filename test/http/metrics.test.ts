import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

describe('GET /metrics', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  test('exposes process metrics, request durations by FHIR route pattern and status, and the database pool, in the Prometheus text format', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', active: true } });
    await fhirRequest('GET', `${server.base}/Patient/${created.body.id}`);
    await fhirRequest('GET', `${server.base}/Patient/${created.body.id}`);
    await fhirRequest('GET', `${server.base}/Patient/no-such-patient`);
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const count = (labels: string): number => Number(new RegExp(`^fhir_http_request_duration_seconds_count\\{${labels}\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    expect(count('method="GET",route="/fhir/:resourceType/:id",status="200"')).toBe(2);
    expect(count('method="GET",route="/fhir/:resourceType/:id",status="404"')).toBe(1);
    expect(count('method="POST",route="/fhir/:resourceType",status="201"')).toBe(1);
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
    expect(text).toMatch(/^fhir_db_pool_connections\{state="used"\} \d+$/m);
    // The reads above are in the audit journal until moved (within a quarter of a second).
    expect(text).toMatch(/^fhir_audit_journal_events \d+$/m);
  });
});

describe('METRICS=false', () => {
  test('turns the endpoint off', async () => {
    const server = await startTestServer({ METRICS: 'false' });
    try {
      expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
    } finally {
      await server.stop();
    }
  });
});
