/**
 * The cost of authorization on reads and searches (bench:crud's last table): the same
 * read-by-id and search cells without a token, with a `system/*.rs` token (signature
 * check, no filter) and with a `patient/*.rs` token (the patient compartment added to
 * every query and checked on every read), next to raw PostgreSQL doing the same select.
 * Overhead = 1 − (with token / without token); the target is under 15%.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { benchToken } from './bench-token';
import { runClosedLoop, type Operation } from './closed-loop-load';
import { KeepAliveClient } from './keep-alive-http';
import { figures, fmt, type CellFigures } from './latency-stats';
import type { RawJsonbStore } from './raw-postgres';
import type { ServerProcess } from './server-process';

type Mode = 'no token' | 'system/*.rs' | 'patient/*.rs';
const MODES: Mode[] = ['no token', 'system/*.rs', 'patient/*.rs'];
const OPS = ['read', 'search'] as const;
type Op = (typeof OPS)[number];
const OBSERVATIONS = 200;
const ROUNDS = Number(process.env.BENCH_AUTH_ROUNDS || 3);
const PAGE = 10;

export interface AuthCellOptions {
  seconds: number;
  warmup: number;
  concurrency: number[];
  stop: () => boolean;
}

/** Server CPU time (user + kernel) in ms, from /proc: robust to the load generator sharing the cores. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

type AuthCell = CellFigures & { cpuUs: number };

interface AuthRow {
  op: Op;
  concurrency: number;
  cells: Record<Mode, AuthCell>;
  raw: CellFigures;
}

export async function authOverhead(server: ServerProcess, databaseUrl: string, raw: RawJsonbStore, options: AuthCellOptions): Promise<void> {
  console.log(`\nAuthorization overhead: Observation read by id and search by subject (one patient, 200 Observations); median of ${ROUNDS} rounds`);
  const { patientId, observationIds, bodies } = await seed(server);
  await raw.createTable('Observation');
  await raw.indexSubject('Observation');
  await raw.resize(1);
  const rawIds: string[] = [];
  for (const body of bodies) rawIds.push(await raw.insert('Observation', body));
  const tokens = await mintTokens(server, databaseUrl, patientId);

  const header =
    `${'op'.padEnd(7)}${'c'.padStart(3)} ${MODES.map((m) => m.padStart(13)).join(' ')} ${'raw/s'.padStart(9)} ${'system'.padStart(8)} ${'patient'.padStart(8)}` +
    ` ${'cpu µs: none'.padStart(13)} ${'system'.padStart(7)} ${'patient'.padStart(8)}`;
  console.log(`${header}\n${' '.repeat(10)}(requests/s; overhead = 1 − with token / no token, by throughput and by server CPU per request)\n${'-'.repeat(header.length)}`);
  const rows: AuthRow[] = [];
  for (const op of OPS) {
    for (const concurrency of options.concurrency) {
      // Rounds in rotated order, the median kept: a mode measured first (colder) or last
      // (after the others warmed the caches) would otherwise differ by more than what is measured.
      const runs: Record<Mode, AuthCell[]> = { 'no token': [], 'system/*.rs': [], 'patient/*.rs': [] };
      for (let round = 0; round < ROUNDS; round++) {
        for (let k = 0; k < MODES.length; k++) {
          const mode = MODES[(k + round) % MODES.length];
          runs[mode].push(await serverCell(server, op, concurrency, tokens[mode], patientId, observationIds, options));
          if (options.stop()) return;
        }
      }
      const cells = Object.fromEntries(MODES.map((m) => [m, median(runs[m])])) as Record<Mode, AuthCell>;
      await raw.resize(concurrency);
      const rawOp: Operation =
        op === 'read'
          ? async (w, i) => void (await raw.select('Observation', rawIds[(w + i * concurrency) % rawIds.length]))
          : async () => void (await raw.selectBySubject('Observation', `Patient/${patientId}`, PAGE));
      const rawCell = figures(await runClosedLoop(rawOp, concurrency, options.seconds, options.warmup, options.stop));
      const row = { op, concurrency, cells, raw: rawCell };
      rows.push(row);
      printRow(row);
    }
  }
  const worst = Math.max(...rows.flatMap((r) => [overhead(r, 'system/*.rs'), overhead(r, 'patient/*.rs')]));
  console.log(`  ${'authorization overhead < 15% on read and search'.padEnd(50)} ${worst < 0.15 ? 'MET    ' : 'NOT MET'} highest ${(worst * 100).toFixed(1)}%`);
  console.log(`  ratio to raw PostgreSQL (patient token): ${rows.map((r) => `${r.op} c=${r.concurrency} ${((r.cells['patient/*.rs'].perSecond / r.raw.perSecond) * 100).toFixed(0)}%`).join(', ')}`);
}

/** The median round by throughput, with the median CPU per request of all rounds. */
function median(cells: AuthCell[]): AuthCell {
  const sorted = [...cells].sort((a, b) => a.perSecond - b.perSecond);
  const cpu = cells.map((c) => c.cpuUs).sort((a, b) => a - b);
  return { ...sorted[Math.floor(sorted.length / 2)], cpuUs: cpu[Math.floor(cpu.length / 2)] };
}

function overhead(row: AuthRow, mode: Mode): number {
  return 1 - row.cells[mode].perSecond / row.cells['no token'].perSecond;
}

function printRow(row: AuthRow): void {
  const pct = (mode: Mode): string => `${(overhead(row, mode) * 100).toFixed(1)}%`.padStart(8);
  const cpu = (mode: Mode): string => `${((row.cells[mode].cpuUs / row.cells['no token'].cpuUs - 1) * 100).toFixed(1)}%`;
  console.log(
    `${row.op.padEnd(7)}${String(row.concurrency).padStart(3)} ${MODES.map((m) => fmt(row.cells[m].perSecond, 13)).join(' ')} ${fmt(row.raw.perSecond, 9)} ${pct('system/*.rs')} ${pct('patient/*.rs')}` +
      ` ${fmt(row.cells['no token'].cpuUs, 13)} ${cpu('system/*.rs').padStart(7)} ${cpu('patient/*.rs').padStart(8)}`
  );
}

async function seed(server: ServerProcess): Promise<{ patientId: string; observationIds: string[]; bodies: string[] }> {
  const client = new KeepAliveClient(server.url, 4);
  try {
    const patient = await client.expect([201], 'POST', '/fhir/Patient', JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Benchmark' }] }));
    const patientId = JSON.parse(patient.body).id as string;
    const bodies: string[] = [];
    const observationIds: string[] = [];
    for (let i = 0; i < OBSERVATIONS; i++) {
      const body = JSON.stringify({
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
        subject: { reference: `Patient/${patientId}` },
        effectiveDateTime: new Date(Date.UTC(2024, 0, 1) + i * 3600_000).toISOString(),
        valueQuantity: { value: 60 + (i % 40), unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
      });
      bodies.push(body);
      observationIds.push(JSON.parse((await client.expect([201], 'POST', '/fhir/Observation', body)).body).id);
    }
    return { patientId, observationIds, bodies };
  } finally {
    client.close();
  }
}

/** Tokens as the token endpoint issues them, signed with the server's keys. */
async function mintTokens(server: ServerProcess, databaseUrl: string, patientId: string): Promise<Record<Mode, string | undefined>> {
  const system = await benchToken(server, databaseUrl, { clientId: 'bench-backend', scope: 'system/*.rs' });
  const patient = await benchToken(server, databaseUrl, {
    clientId: 'bench-app',
    userId: randomUUID(),
    fhirUser: `Patient/${patientId}`,
    // A user's token carries the role the role policy reads; without it the user may do nothing.
    role: 'patient',
    scope: 'launch/patient patient/*.rs openid fhirUser',
    patient: patientId,
  });
  return { 'no token': undefined, 'system/*.rs': system, 'patient/*.rs': patient };
}

async function serverCell(
  server: ServerProcess,
  op: Op,
  concurrency: number,
  token: string | undefined,
  patientId: string,
  ids: string[],
  options: AuthCellOptions
): Promise<AuthCell> {
  const client = new KeepAliveClient(server.url, concurrency);
  const cpuBefore = cpuMs(server.pid);
  const headers = token ? { authorization: `Bearer ${token}` } : undefined;
  const search = `/fhir/Observation?subject=Patient/${patientId}&_count=${PAGE}`;
  const operation: Operation =
    op === 'read'
      ? async (w, i) => void (await client.expect([200], 'GET', `/fhir/Observation/${ids[(w + i * concurrency) % ids.length]}`, undefined, headers))
      : async () => void (await client.expect([200], 'GET', search, undefined, headers));
  try {
    const result = await runClosedLoop(operation, concurrency, options.seconds, options.warmup, options.stop);
    if (result.errors > 0) console.error(`  ${op} c=${concurrency} ${token ? 'token' : 'no token'}: ${result.errors} errors, first: ${result.firstError}`);
    // Warm-up requests are not counted in `operations` but their CPU is: estimate them at the same rate.
    const requests = result.operations * (1 + options.warmup / options.seconds);
    return { ...figures(result), cpuUs: ((cpuMs(server.pid) - cpuBefore) * 1000) / requests };
  } finally {
    client.close();
  }
}
