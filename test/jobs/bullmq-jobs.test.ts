import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { Queue } from 'bullmq';
import { loadConfig } from '../../server/config';
import { OUTBOX_QUEUE } from '../../server/jobs/bullmq-jobs';
import type { RunningServer } from '../../server/start';
import { fhirRequest } from '../support/fhir-client';
import { startServerOn, startTestServer, type TestServer } from '../support/test-server';

/**
 * With REDIS_URL, BullMQ schedules the background jobs (server/jobs/bullmq-jobs.ts); their
 * state stays in PostgreSQL. Each test uses its own key prefix on the machine's Redis.
 */
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const UNREACHABLE_REDIS = 'redis://127.0.0.1:1';
const REFRESH_MS = '100';

const prefixes: string[] = [];
function newPrefix(): string {
  const prefix = `test-jobs-${randomBytes(6).toString('hex')}`;
  prefixes.push(prefix);
  return prefix;
}

function outbox(prefix: string): Queue {
  return new Queue(OUTBOX_QUEUE, { connection: { url: REDIS_URL }, prefix });
}

afterAll(async () => {
  for (const prefix of prefixes) {
    const queue = outbox(prefix);
    await queue.obliterate({ force: true });
    await queue.close();
  }
});

/** Another process's worth of server (own pool, own job worker) on an existing database. */
async function serverOn(databaseUrl: string, env: Record<string, string>): Promise<RunningServer> {
  return (await startServerOn(databaseUrl, { SEARCH_PARAMETER_REFRESH_MS: REFRESH_MS, ...env })).server;
}

async function until<T>(what: () => Promise<T | undefined> | T | undefined, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await what();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function kickOffExport(base: string): Promise<string> {
  const res = await fhirRequest('GET', `${base}/Patient/$export`, { headers: { Prefer: 'respond-async', Accept: 'application/fhir+json' } });
  expect(res.status).toBe(202);
  return res.headers.get('content-location') as string;
}

async function exportStatus(statusUrl: string): Promise<number> {
  return (await fhirRequest('GET', statusUrl, { headers: { Accept: 'application/json' } })).status;
}

async function exportedPatientIds(statusUrl: string): Promise<string[]> {
  const manifest = await until(async () => {
    const res = await fhirRequest('GET', statusUrl, { headers: { Accept: 'application/json' } });
    return res.status === 200 ? (res.body as { output: { type: string; url: string }[] }) : undefined;
  });
  const ids: string[] = [];
  for (const file of manifest.output.filter((f) => f.type === 'Patient')) {
    const text = await (await fetch(file.url)).text();
    ids.push(...text.split('\n').filter(Boolean).map((line) => JSON.parse(line).id as string));
  }
  return ids;
}

describe('with REDIS_URL', () => {
  let server: TestServer;
  let prefix: string;
  let queue: Queue;

  beforeAll(async () => {
    prefix = newPrefix();
    server = await startTestServer({ REDIS_URL, JOBS_REDIS_PREFIX: prefix, SEARCH_PARAMETER_REFRESH_MS: REFRESH_MS });
    queue = outbox(prefix);
  });
  afterAll(async () => {
    await server?.stop();
    await queue?.close();
  });

  test('the rounds are a BullMQ job scheduler under the configured prefix, and a Bulk Data export waits while that queue is paused and completes once it resumes', async () => {
    const schedulers = await until(async () => {
      const found = await queue.getJobSchedulers();
      return found.length > 0 ? found : undefined;
    });
    expect(schedulers.map((s) => [s.name, s.every])).toEqual([['round', Number(REFRESH_MS)]]);

    await queue.pause();
    // A round taken just before the pause ends within half an interval.
    await new Promise((r) => setTimeout(r, 300));
    const patient = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', name: [{ family: 'Queued' }] } });
    expect(patient.status).toBe(201);
    const statusUrl = await kickOffExport(server.base);
    // Fifteen intervals: the in-process timer would have run it by now; BullMQ's paused queue does not.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await exportStatus(statusUrl)).toBe(202);
    const job = (await server.server.knex.raw(`SELECT status FROM export_job`)).rows;
    expect(job).toEqual([{ status: 'accepted' }]);

    await queue.resume();
    expect(await exportedPatientIds(statusUrl)).toEqual([patient.body.id]);
  });

  test('two processes sharing the database and the Redis each run a worker, and deliver every Subscription notification exactly once', async () => {
    const received: string[] = [];
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        received.push(JSON.parse(body).id);
        res.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const second = await serverOn(server.databaseUrl, { REDIS_URL, JOBS_REDIS_PREFIX: prefix });
    try {
      await until(async () => ((await queue.getWorkers()).length === 2 ? true : undefined));
      const subscription = await fhirRequest('POST', `${server.base}/Subscription`, {
        body: {
          resourceType: 'Subscription',
          status: 'requested',
          reason: 'test',
          criteria: 'Observation?code=http://loinc.org|8867-4',
          channel: { type: 'rest-hook', endpoint: `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`, payload: 'application/fhir+json' },
        },
      });
      expect(subscription.status).toBe(201);
      const created: string[] = [];
      for (let i = 0; i < 20; i++) {
        const base = i % 2 === 0 ? server.base : `${second.url}/fhir`;
        const res = await fhirRequest('POST', `${base}/Observation`, {
          body: { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] }, valueQuantity: { value: 60 + i } },
        });
        expect(res.status).toBe(201);
        created.push(res.body.id);
      }
      await until(() => (received.length >= created.length ? true : undefined));
      // Ten more intervals: a second delivery of any of them would have come by now.
      await new Promise((r) => setTimeout(r, 1000));
      expect([...received].sort()).toEqual([...created].sort());
    } finally {
      await second.stop();
      await new Promise((r) => receiver.close(r));
    }
  });
});

test('while Redis cannot be reached the server answers and stops, its export waits in PostgreSQL, and a process with Redis runs it', async () => {
  const cut = await startTestServer({ REDIS_URL: UNREACHABLE_REDIS, JOBS_REDIS_PREFIX: newPrefix(), SEARCH_PARAMETER_REFRESH_MS: REFRESH_MS });
  let rescuer: RunningServer | undefined;
  try {
    const patient = await fhirRequest('POST', `${cut.base}/Patient`, { body: { resourceType: 'Patient', name: [{ family: 'Stranded' }] } });
    expect(patient.status).toBe(201);
    const statusUrl = await kickOffExport(cut.base);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await exportStatus(statusUrl)).toBe(202);

    rescuer = await serverOn(cut.databaseUrl, { REDIS_URL, JOBS_REDIS_PREFIX: newPrefix() });
    expect(await exportedPatientIds(statusUrl)).toEqual([patient.body.id]);
  } finally {
    await rescuer?.stop();
    // A worker whose Redis never answered still stops (the test's timeout says if it hangs).
    await cut.stop();
  }
}, 60_000);

test('JOBS_REDIS_PREFIX defaults to fhir:jobs and must be letters, digits or : . _ -', () => {
  expect(loadConfig({}).jobsRedisPrefix).toBe('fhir:jobs');
  expect(loadConfig({ JOBS_REDIS_PREFIX: 'site-a:jobs' }).jobsRedisPrefix).toBe('site-a:jobs');
  expect(() => loadConfig({ JOBS_REDIS_PREFIX: 'two words' })).toThrow(/JOBS_REDIS_PREFIX must be 1 to 64 letters/);
});
