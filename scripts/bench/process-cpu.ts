import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time (user + kernel) from /proc, for figures that other load on a 2-core machine
 * barely moves, unlike requests/s: what one request or one resource costs each process.
 * Linux only; elsewhere every reading is undefined.
 */

const MS_PER_TICK = 10; // USER_HZ is 100 on Linux

/** User and kernel CPU of one process so far, in ms; undefined once it is gone. */
export function processCpuMs(pid: number | string): { total: number; kernel: number } | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return { total: (Number(fields[11]) + Number(fields[12])) * MS_PER_TICK, kernel: Number(fields[12]) * MS_PER_TICK };
  } catch {
    return undefined;
  }
}

/** CPU of a process and of its live descendants (node:cluster workers), in ms. */
export function processTreeCpuMs(pid: number): number | undefined {
  const root = processCpuMs(pid);
  if (!root) return undefined;
  let total = root.total;
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return total;
  }
  const parentOf = new Map<string, string>();
  for (const p of pids) {
    try {
      parentOf.set(p, readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
    } catch {
      // gone meanwhile
    }
  }
  for (const p of pids) {
    for (let up = parentOf.get(p); up !== undefined && up !== '0' && up !== '1'; up = parentOf.get(up)) {
      if (up === String(pid)) {
        total += processCpuMs(p)?.total ?? 0;
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
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
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
