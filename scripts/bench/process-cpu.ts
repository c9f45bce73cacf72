import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time (user + kernel) from /proc, for figures that other load on a 2-core machine
 * barely moves, unlike requests/s: what one request or one resource costs each process.
 * Linux only; elsewhere every reading is undefined.
 */

const MS_PER_TICK = 10; // USER_HZ is 100 on Linux

/** The fields of /proc/<pid>/stat after the command name (state is [0], ppid [1], utime [11], stime [12]); undefined once gone. */
function statFields(pid: number | string): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  } catch {
    return undefined;
  }
}

/** Every process id in /proc (empty where there is no /proc). */
function processIds(): string[] {
  try {
    return readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
}

function cpuOf(fields: string[]): { total: number; kernel: number } {
  return { total: (Number(fields[11]) + Number(fields[12])) * MS_PER_TICK, kernel: Number(fields[12]) * MS_PER_TICK };
}

/** User and kernel CPU of one process so far, in ms; undefined once it is gone. */
export function processCpuMs(pid: number | string): { total: number; kernel: number } | undefined {
  const fields = statFields(pid);
  return fields && cpuOf(fields);
}

/** CPU of a process and of its live descendants (node:cluster workers), in ms. */
export function processTreeCpuMs(pid: number): number | undefined {
  const stats = new Map<string, string[]>();
  for (const p of processIds()) {
    const fields = statFields(p);
    if (fields) stats.set(p, fields);
  }
  const root = stats.get(String(pid)) ?? statFields(pid);
  if (!root) return undefined;
  let total = cpuOf(root).total;
  for (const [p, fields] of stats) {
    for (let up = fields[1]; up !== undefined && up !== '0' && up !== '1'; up = stats.get(up)?.[1] as string) {
      if (up === String(pid)) {
        total += cpuOf(fields).total;
        break;
      }
    }
  }
  return total;
}

/**
 * CPU of every PostgreSQL process (backends, WAL writer, checkpointer, autovacuum) so far,
 * by pid: subtract two readings with `postgresCpuSince`. A backend that ended between
 * the two readings is lost, so measure over connections that stay open.
 */
export function postgresCpuByPid(): Map<string, number> | undefined {
  const pids = processIds();
  if (pids.length === 0) return undefined;
  const byPid = new Map<string, number>();
  for (const pid of pids) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') continue;
    } catch {
      continue;
    }
    const cpu = processCpuMs(pid);
    if (cpu) byPid.set(pid, cpu.total);
  }
  return byPid;
}

/** ms of PostgreSQL CPU since `before` (processes started since count from zero). */
export function postgresCpuSince(before: Map<string, number> | undefined): number | undefined {
  const now = postgresCpuByPid();
  if (!before || !now) return undefined;
  let total = 0;
  for (const [pid, ms] of now) total += ms - (before.get(pid) ?? 0);
  return total;
}
