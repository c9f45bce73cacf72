import { runReindexBatch } from '../../server/jobs/reindex-job';
import { createKnex } from '../../server/storage/database';
import { Repository } from '../../server/storage/repository';
import { fhirRequest } from '../support/fhir-client';
import { readHl7Example, hl7ExampleFiles } from '../support/hl7-examples';
import { startTestServer, type TestServer } from '../support/test-server';

/** The server's own runner never ticks here (first check after 10 minutes): the test drives the job. */
let server: TestServer;
const options = { batchSize: 3, settleMs: 0 };

beforeAll(async () => {
  server = await startTestServer({ SEARCH_PARAMETER_REFRESH_MS: '600000' });
  for (const file of hl7ExampleFiles().filter((f) => f.startsWith('Patient-'))) {
    const example = readHl7Example(file);
    expect((await fhirRequest('PUT', `${server.base}/Patient/${example.id}`, { body: example })).status).toBe(201);
  }
});

afterAll(async () => {
  await server?.stop();
});

async function jobRow(knex = server.server.knex): Promise<any> {
  return (await knex.raw(`SELECT * FROM reindex_job WHERE status <> 'cancelled' ORDER BY created_at DESC LIMIT 1`)).rows[0];
}

test('a reindex job is held by one process at a time and continues from its cursor in another after a crash', async () => {
  const sp = {
    resourceType: 'SearchParameter',
    id: 'lang',
    url: 'http://example.org/fhir/SearchParameter/lang',
    name: 'lang',
    status: 'active',
    description: 'communication language',
    code: 'lang',
    base: ['Patient'],
    type: 'token',
    expression: 'Patient.communication.language',
  };
  const created = await fhirRequest('PUT', `${server.base}/SearchParameter/lang`, { body: sp });
  expect(created.status).toBe(201);
  const first = server.server.knex;
  const repo = new Repository(first, { searchDefaultCount: 20, searchMaxCount: 1000 });

  // Another process holds the job (mid-batch): this one skips it rather than waiting or doubling the work.
  const holder = await first.transaction();
  await holder.raw('SELECT id FROM reindex_job WHERE status = ? FOR UPDATE', ['pending']);
  expect(await runReindexBatch(first, repo, options)).toBe(false);
  // ... and then crashes: its transaction is rolled back, nothing of its batch stays.
  await holder.rollback();

  expect(await runReindexBatch(first, repo, options)).toBe(true); // counts the rows: pending → running
  expect(await runReindexBatch(first, repo, options)).toBe(true); // first batch
  const midway = await jobRow();
  expect(midway.status).toBe('running');
  expect(midway.progress.Patient.done).toBe(3);
  const total = midway.progress.Patient.total;
  expect(total).toBeGreaterThan(6);

  // A "restarted process": its own pool and repository, nothing shared in memory but the database.
  const second = createKnex(server.databaseUrl, 2);
  try {
    const secondRepo = new Repository(second, { searchDefaultCount: 20, searchMaxCount: 1000 });
    let batches = 0;
    while (await runReindexBatch(second, secondRepo, options)) batches++;
    expect(batches).toBe(Math.ceil((total - 3 + 1) / 3) + 1);
    const done = await jobRow(second);
    expect(done.status).toBe('completed');
    expect(done.progress.Patient).toEqual(expect.objectContaining({ done: total, total, finished: true }));
    const task = await fhirRequest('GET', `${server.base}/Task/${done.id}`);
    expect(task.body.status).toBe('completed');
    expect(task.body.businessStatus.text).toBe(`${total} of ${total} resources indexed`);
  } finally {
    await second.destroy();
  }

  const indexed = await first.raw(`SELECT count(*) AS n FROM "Patient" WHERE "__lang" IS NOT NULL`);
  const expected = hl7ExampleFiles()
    .filter((f) => f.startsWith('Patient-'))
    .map(readHl7Example)
    .filter((p) => (p.communication ?? []).some((c: any) => c.language)).length;
  expect(Number(indexed.rows[0].n)).toBe(expected);
});
