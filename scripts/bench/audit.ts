/**
 * `npm run bench:audit` — what access control and the audit trail cost (issue 6):
 *
 * 1. Observation read by id and search by subject at 1 and 8 clients on a server with
 *    neither (AUDIT=false, no token) and on one with both (an AuditEvent per request, a
 *    practitioner's token: role policy, hospital boundary, Consent lookup); the ratio is
 *    the share of throughput kept (target ≥ 75%), with raw PostgreSQL's select beside.
 * 2. `AuditEvent?patient=…&date=ge…` at scale: BENCH_AUDIT_EVENTS AuditEvents (default
 *    2,000,000, about BENCH_AUDIT_PATIENTS = 20,000 patients over one year) written
 *    through the repository in-process, then 300 searches by an auditor at 1 and 8
 *    clients: p50 / p95 (target p95 < 50 ms). Written in minutes, they leave the
 *    server's sealer a backlog to link into the hash chain, which it works through at
 *    full speed beside the searches; the searches are timed during that (shown) and
 *    again once every event is linked (the verdict: in steady state events are linked
 *    as they are written, within a second).
 *
 * Env: DATABASE_URL (admin connection), BENCH_SECONDS (5), BENCH_AUDIT_EVENTS,
 * BENCH_AUDIT_PARTS (`audit,access`; `audit` or `access` for one alone),
 * BENCH_AUDIT_PATIENTS, BENCH_KEEP_DB=1 to keep the database.
 */
import { randomUUID } from 'node:crypto';
import type { AuditEvent, Resource } from '@medplum/fhirtypes';
import { interactionAuditEvent } from '../../server/audit/audit-event';
import { newId } from '../../server/core/ids';
import { createKnex } from '../../server/storage/database';
import { prepareSchema } from '../../server/storage/prepare-schema';
import { Repository } from '../../server/storage/repository';
import { adminDatabaseUrl, checkpoint, createBenchDatabase } from './bench-database';
import { BenchCleanup } from './bench-cleanup';
import { benchToken } from './bench-token';
import { runClosedLoop, type Operation } from './closed-loop-load';
import { KeepAliveClient } from './keep-alive-http';
import { figures, fmt, percentile, type CellFigures } from './latency-stats';
import { RawJsonbStore } from './raw-postgres';
import { startServerProcess, type ServerProcess } from './server-process';

const env = process.env;
const SECONDS = Number(env.BENCH_SECONDS || 5);
const EVENTS = Number(env.BENCH_AUDIT_EVENTS || 2_000_000);
const PATIENTS = Number(env.BENCH_AUDIT_PATIENTS || 20_000);
const KEEP_DB = env.BENCH_KEEP_DB === '1';
const CHUNK = 1000;
const cleanup = new BenchCleanup('stopping the servers, dropping the benchmark database');

async function main(): Promise<void> {
  console.log(`bench:audit — ${SECONDS} s per cell; ${EVENTS.toLocaleString()} AuditEvents for the search part`);
  const database = await createBenchDatabase(adminDatabaseUrl());
  cleanup.add(() => (KEEP_DB ? Promise.resolve(console.log(`kept ${database.url}`)) : database.drop()));
  const knex = createKnex(database.url, 4);
  cleanup.add(() => knex.destroy());
  await prepareSchema(knex);

  // 1. Throughput without and with access control + audit.
  const plain = await startServerProcess(database.url, { AUDIT: 'false' });
  cleanup.add(() => plain.stop());
  const seeded = await seed(plain);
  const without = await cells(plain, seeded, undefined);
  await plain.stop();
  // BENCH_AUDIT_PARTS=audit or =access measures one of the two alone.
  const parts = env.BENCH_AUDIT_PARTS || 'audit,access';
  const guarded = await startServerProcess(database.url, { AUDIT: String(parts.includes('audit')), AUTH_REQUIRED: 'false' });
  cleanup.add(() => guarded.stop());
  const practitioner = await benchToken(guarded, database.url, { clientId: 'bench-ehr', userId: randomUUID(), fhirUser: `Practitioner/${seeded.practitioner}`, role: 'practitioner', scope: 'user/*.rs' });
  const withBoth = await cells(guarded, seeded, parts.includes('access') ? practitioner : undefined);
  const raw = new RawJsonbStore(database.url);
  cleanup.add(() => raw.close());
  await raw.createTable('Observation');
  await raw.resize(1);
  const rawIds: string[] = [];
  for (const body of seeded.bodies) rawIds.push(await raw.insert('Observation', body));
  console.log(`\n${'op'.padEnd(7)}${'c'.padStart(3)} ${'neither/s'.padStart(10)} ${'both/s'.padStart(8)} ${'kept'.padStart(6)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'raw/s'.padStart(8)}`);
  let worst = 1;
  for (const key of Object.keys(without)) {
    const [op, c] = key.split(' ');
    await raw.resize(Number(c));
    const rawOp: Operation = async (w, i) => void (await raw.select('Observation', rawIds[(w + i * Number(c)) % rawIds.length]));
    const rawCell = figures(await runClosedLoop(rawOp, Number(c), SECONDS, 1, () => cleanup.interrupted));
    const kept = withBoth[key].perSecond / without[key].perSecond;
    worst = Math.min(worst, kept);
    console.log(
      `${op.padEnd(7)}${c.padStart(3)} ${fmt(without[key].perSecond, 10)} ${fmt(withBoth[key].perSecond)} ${`${(kept * 100).toFixed(0)}%`.padStart(6)} ${fmt(withBoth[key].p50)} ${fmt(withBoth[key].p99)} ${fmt(rawCell.perSecond)}`
    );
  }
  console.log(`  ${'access control + audit cost ≤ 25% of read/search throughput'.padEnd(62)} ${worst >= 0.75 ? 'MET' : 'NOT MET'} (lowest kept ${(worst * 100).toFixed(0)}%)`);

  // 2. AuditEvent search at scale.
  if (EVENTS > 0) await auditSearch(guarded, database.url, knex);
}

interface Seeded {
  practitioner: string;
  patient: string;
  observations: string[];
  bodies: string[];
}

async function seed(server: ServerProcess): Promise<Seeded> {
  const client = new KeepAliveClient(server.url, 4);
  const post = async (resource: Record<string, unknown>): Promise<string> =>
    JSON.parse((await client.expect([201], 'POST', `/fhir/${resource.resourceType}`, JSON.stringify(resource))).body).id;
  try {
    const hospital = await post({ resourceType: 'Organization', name: 'Bench Hospital' });
    const practitioner = await post({ resourceType: 'Practitioner', name: [{ family: 'Bench' }] });
    await post({ resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${practitioner}` }, organization: { reference: `Organization/${hospital}` } });
    const patient = await post({ resourceType: 'Patient', name: [{ family: 'Benchmark' }], managingOrganization: { reference: `Organization/${hospital}` } });
    const observations: string[] = [];
    const bodies: string[] = [];
    for (let i = 0; i < 200; i++) {
      const body = {
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
        subject: { reference: `Patient/${patient}` },
        effectiveDateTime: new Date(Date.UTC(2026, 0, 1) + i * 3600_000).toISOString(),
        valueQuantity: { value: 60 + (i % 40), unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
      };
      bodies.push(JSON.stringify(body));
      observations.push(await post(body));
    }
    return { practitioner, patient, observations, bodies };
  } finally {
    client.close();
  }
}

/** Median of three rounds per cell: read by id and search by subject at 1 and 8 clients. */
async function cells(server: ServerProcess, seeded: Seeded, bearer: string | undefined): Promise<Record<string, CellFigures>> {
  const out: Record<string, CellFigures> = {};
  const headers = bearer ? { authorization: `Bearer ${bearer}` } : undefined;
  for (const op of ['read', 'search']) {
    for (const c of [1, 8]) {
      const client = new KeepAliveClient(server.url, c);
      const operation: Operation =
        op === 'read'
          ? async (w, i) => void (await client.expect([200], 'GET', `/fhir/Observation/${seeded.observations[(w + i * c) % seeded.observations.length]}`, undefined, headers))
          : async () => void (await client.expect([200], 'GET', `/fhir/Observation?subject=Patient/${seeded.patient}&_count=10`, undefined, headers));
      const rounds: CellFigures[] = [];
      for (let r = 0; r < 3; r++) rounds.push(figures(await runClosedLoop(operation, c, SECONDS, 1, () => cleanup.interrupted)));
      client.close();
      out[`${op} ${c}`] = rounds.sort((a, b) => a.perSecond - b.perSecond)[1];
    }
  }
  return out;
}

async function auditSearch(server: ServerProcess, databaseUrl: string, knex: ReturnType<typeof createKnex>): Promise<void> {
  const repo = new Repository(knex, { searchDefaultCount: 20, searchMaxCount: 1000 });
  const start = Date.UTC(2026, 0, 1);
  const year = 365 * 86400_000;
  const observer = { baseUrl: 'http://bench/fhir', stream: 'bench' };
  console.log(`\nwriting ${EVENTS.toLocaleString()} AuditEvents for ${PATIENTS.toLocaleString()} patients (Repository.createMany, in-process)…`);
  const t0 = performance.now();
  for (let written = 0; written < EVENTS && !cleanup.interrupted; written += CHUNK) {
    const batch: (AuditEvent & { id: string })[] = [];
    for (let i = written; i < Math.min(EVENTS, written + CHUNK); i++) {
      const patient = `p${i % PATIENTS}`;
      const answered = { resourceType: 'Observation', id: `o${i}`, subject: { reference: `Patient/${patient}` } } as Resource;
      const event = interactionAuditEvent(
        { kind: { subtype: 'read', action: 'R' }, description: `GET /fhir/Observation/o${i}`, resourceType: 'Observation', id: `o${i}`, status: 200, answered },
        observer,
        new Date(start + ((i * 7919) % year))
      );
      batch.push({ ...event, id: newId() });
    }
    await repo.createMany(batch);
    if ((written / CHUNK) % 200 === 0) console.log(`  ${written.toLocaleString()} (${Math.round(written / ((performance.now() - t0) / 1000))}/s)`);
  }
  console.log(`written in ${((performance.now() - t0) / 1000).toFixed(0)} s; VACUUM ANALYZE…`);
  await knex.raw('VACUUM ANALYZE "AuditEvent"');
  const auditor = await benchToken(server, databaseUrl, { clientId: 'bench-audit', userId: randomUUID(), fhirUser: 'Practitioner/auditor', role: 'auditor', scope: 'user/AuditEvent.rs' });
  // A year of events written in minutes leaves the server's sealer a backlog to link into
  // the hash chain, which it works through at full speed beside the requests: shown, but
  // not the steady state the target is about, where events are linked as they are written.
  const backlog = Number((await knex('audit_unsealed').count<{ n: string }[]>('* as n'))[0].n);
  console.log(await checkpoint(knex));
  if (backlog > 0) await timeAuditorSearch(`while the server links a backlog of ${backlog.toLocaleString()} events into the hash chain`, false);
  const t1 = performance.now();
  while (!cleanup.interrupted && (await knex('audit_unsealed').first('seq'))) await new Promise((r) => setTimeout(r, 1000));
  if (backlog > 0) console.log(`backlog linked ${((performance.now() - t1) / 1000).toFixed(0)} s later; VACUUM ANALYZE…`);
  await knex.raw('VACUUM ANALYZE audit_unsealed, audit_chain');
  console.log(await checkpoint(knex));
  await timeAuditorSearch('with every event linked (steady state)', true);

  async function timeAuditorSearch(label: string, verdict: boolean): Promise<void> {
    console.log(label);
    for (const c of [1, 8]) {
      const client = new KeepAliveClient(server.url, c);
      const latencies: number[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: c }, async () => {
          while (next < 300) {
            const k = next++;
            const since = new Date(start + ((k * 104729) % (year / 2))).toISOString().slice(0, 10);
            const t = performance.now();
            await client.expect([200], 'GET', `/fhir/AuditEvent?patient=Patient/p${(k * 7) % PATIENTS}&date=ge${since}&_count=20`, undefined, { authorization: `Bearer ${auditor}` });
            latencies.push(performance.now() - t);
          }
        })
      );
      client.close();
      const sorted = Float64Array.from(latencies).sort();
      const p95 = percentile(sorted, 95);
      const target = verdict ? ` (target < 50 ms: ${p95 < 50 ? 'MET' : 'NOT MET'})` : '';
      console.log(`  AuditEvent?patient=…&date=ge… c=${c}: p50 ${percentile(sorted, 50).toFixed(1)} ms, p95 ${p95.toFixed(1)} ms${target}`);
    }
  }
}

main()
  .then(() => cleanup.run(), async (err) => {
    if (!cleanup.interrupted) console.error(err instanceof Error ? err.stack : err);
    await cleanup.run();
    process.exitCode = 1;
  })
  .then(() => {
    if (!cleanup.interrupted) process.exit(process.exitCode ?? 0);
  });
