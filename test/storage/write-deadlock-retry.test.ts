import pg from 'pg';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * A write that is a statement of its own and that PostgreSQL aborts to break a deadlock
 * was rolled back whole: the server runs it again instead of answering 500 (found by
 * fuzzing batches beside transactions on the same patients). The deadlock is made here on
 * purpose: a trigger makes the server's update wait on a lock another session holds
 * while that session waits for the row the update locked.
 */
let server: TestServer;
let other: pg.Client;
beforeAll(async () => {
  server = await startTestServer();
  other = new pg.Client({ connectionString: server.databaseUrl });
  await other.connect();
});
afterAll(async () => {
  await other?.end();
  await server?.stop();
});

test('an update chosen as a deadlock victim runs again and succeeds', async () => {
  expect((await fhirRequest('PUT', `${server.base}/Patient/deadlock`, { body: { resourceType: 'Patient', id: 'deadlock', gender: 'male' } })).status).toBe(201);
  await other.query(`CREATE FUNCTION wait_for_lock_42() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_xact_lock(42); RETURN NEW; END $$`);
  await other.query(`CREATE TRIGGER deadlock_on_update AFTER UPDATE ON "Patient" FOR EACH ROW WHEN (NEW.id = 'deadlock') EXECUTE FUNCTION wait_for_lock_42()`);
  // The other session waits longer before it looks for deadlocks: the server's statement is the one PostgreSQL aborts.
  await other.query(`SET deadlock_timeout = '5s'`);
  await other.query('BEGIN');
  await other.query('SELECT pg_advisory_xact_lock(42)');
  const update = fhirRequest('PUT', `${server.base}/Patient/deadlock`, { body: { resourceType: 'Patient', id: 'deadlock', gender: 'female' } });
  // Once the server's update holds the row and waits in the trigger, this session asks for the row: a deadlock.
  for (let i = 0; i < 100; i++) {
    const waiting = await server.server.knex.raw(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 42 AND NOT granted`);
    if (waiting.rows[0].n > 0) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // PostgreSQL aborts the server's statement, which frees the row for this session; its retry waits for the COMMIT.
  await other.query(`UPDATE "Patient" SET last_updated = last_updated WHERE id = 'deadlock'`);
  await other.query('COMMIT');
  const res = await update;
  await other.query('DROP TRIGGER deadlock_on_update ON "Patient"');
  expect(res.status).toBe(200);
  expect((await fhirRequest('GET', `${server.base}/Patient/deadlock`)).body.gender).toBe('female');
});
