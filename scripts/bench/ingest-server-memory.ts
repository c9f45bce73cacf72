import { readdirSync, readFileSync } from 'node:fs';

/**
 * Peak memory of the benchmark's server process, from Linux /proc (elsewhere: unknown).
 * server-process.ts does not hand out the child's pid, so it is found as the child of
 * this process that runs bench-server-main.ts. The peak is the larger of the kernel's
 * own high-water mark of that process (VmHWM) and the largest sum of VmRSS over it and
 * any processes it starts (polled), should the server ever fork workers.
 */
export class ServerMemory {
  private peakTreeKb = 0;
  private readonly timer: NodeJS.Timeout;

  private constructor(private readonly pid: number) {
    this.sample();
    this.timer = setInterval(() => this.sample(), 250);
    this.timer.unref();
  }

  /** Undefined when /proc cannot tell (not Linux) or no such child is running. */
  static watch(commandPart = 'bench-server-main.ts'): ServerMemory | undefined {
    const pid = childPids(process.pid).find((child) => readProc(`${child}/cmdline`)?.includes(commandPart));
    return pid === undefined ? undefined : new ServerMemory(pid);
  }

  /** Stops polling; call while the server still runs, so that VmHWM can be read. Bytes. */
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    const hwm = statusKb(this.pid, 'VmHWM') ?? 0;
    return Math.max(hwm, this.peakTreeKb) * 1024;
  }

  private sample(): void {
    let sum = 0;
    for (const pid of [this.pid, ...descendants(this.pid)]) {
      sum += statusKb(pid, 'VmRSS') ?? 0;
    }
    this.peakTreeKb = Math.max(this.peakTreeKb, sum);
  }
}

function readProc(path: string): string | undefined {
  try {
    return readFileSync(`/proc/${path}`, 'utf8');
  } catch {
    return undefined;
  }
}

function statusKb(pid: number, field: string): number | undefined {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readProc(`${pid}/status`) ?? '');
  return match ? Number(match[1]) : undefined;
}

/** /proc/PID/task/TID/children lists the children each thread started. */
function childPids(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tasks.flatMap((tid) =>
    (readProc(`${pid}/task/${tid}/children`) ?? '')
      .split(' ')
      .filter((s) => s.trim() !== '')
      .map(Number)
  );
}

function descendants(pid: number): number[] {
  const children = childPids(pid);
  return children.flatMap((child) => [child, ...descendants(child)]);
}
