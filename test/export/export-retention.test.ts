import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * Bulk Data export files do not live for ever (export.html, "Response - Complete Status":
 * the server SHOULD give an Expires header; files are available until then): a finished
 * export is gone (404) once EXPORT_RETENTION_SECONDS have passed since it finished, and
 * the next job round deletes its rows and files.
 */
let server: TestServer;
const RETENTION_SECONDS = 4;

beforeAll(async () => {
  server = await startTestServer({ EXPORT_RETENTION_SECONDS: String(RETENTION_SECONDS) });
  expect((await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', name: [{ family: 'Retained' }] } })).status).toBe(201);
}, 60000);

afterAll(async () => {
  await server?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function kickOff(): Promise<{ statusUrl: string; id: string }> {
  const res = await fhirRequest('GET', `${server.base}/$export?_type=Patient`, { headers: { Prefer: 'respond-async', Accept: 'application/fhir+json' } });
  expect(res.status).toBe(202);
  const statusUrl = res.headers.get('content-location') as string;
  return { statusUrl, id: statusUrl.split('/').pop() as string };
}

async function rowsOf(id: string): Promise<{ jobs: number; files: number }> {
  const knex = server.server.knex;
  const jobs = Number((await knex.raw('SELECT count(*) AS n FROM export_job WHERE id = ?', [id])).rows[0].n);
  const files = Number((await knex.raw('SELECT count(*) AS n FROM export_file WHERE job_id = ?', [id])).rows[0].n);
  return { jobs, files };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen in ${timeoutMs} ms`);
    await sleep(100);
  }
}

test('the manifest says when it expires; until then it and its files are there, then they are 404 and the rows are deleted', async () => {
  const { statusUrl, id } = await kickOff();
  const complete = await until('the export', async () => {
    const res = await fhirRequest('GET', statusUrl, { headers: { Accept: 'application/json' } });
    return res.status === 200 ? res : undefined;
  });
  const expires = Date.parse(complete.headers.get('expires') as string);
  // An HTTP date has whole seconds: within the retention of now, give or take one.
  expect(expires).toBeGreaterThan(Date.now() - 1000);
  expect(expires).toBeLessThanOrEqual(Date.now() + RETENTION_SECONDS * 1000 + 1000);
  const fileUrl: string = complete.body.output[0].url;
  expect((await fetch(fileUrl)).status).toBe(200);
  expect(await rowsOf(id)).toEqual({ jobs: 1, files: 1 });

  await sleep(Math.max(0, expires + 1000 - Date.now()));
  expect((await fhirRequest('GET', statusUrl)).status).toBe(404);
  expect((await fetch(fileUrl)).status).toBe(404);
  await until('the deletion', async () => ((await rowsOf(id)).jobs === 0 ? true : undefined));
  expect(await rowsOf(id)).toEqual({ jobs: 0, files: 0 });
}, 60000);

test('a cancelled export is deleted after the retention too; a finished one within its retention is kept through job rounds', async () => {
  const cancelled = await kickOff();
  expect((await fhirRequest('DELETE', cancelled.statusUrl)).status).toBe(202);
  await until('the deletion of the cancelled export', async () => ((await rowsOf(cancelled.id)).jobs === 0 ? true : undefined));

  const fresh = await kickOff();
  await until('the export', async () => ((await fhirRequest('GET', fresh.statusUrl)).status === 200 ? true : undefined));
  // Job rounds run every second (SEARCH_PARAMETER_REFRESH_MS): one and a half seconds later, at least one has run.
  await sleep(1500);
  expect((await fhirRequest('GET', fresh.statusUrl)).status).toBe(200);
  expect((await rowsOf(fresh.id)).jobs).toBe(1);
}, 60000);
