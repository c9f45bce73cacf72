import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { startArgumentsFor } from '../start-command';
import { freePort } from '../../server/core/free-port';

export interface ServerProcess {
  url: string;
  /** The server's process id (for CPU time from /proc). */
  pid: number;
  /** Undefined while it runs; then how it ended, e.g. "exit code 1" or "signal SIGKILL". */
  exitStatus(): string | undefined;
  stop(): Promise<void>;
}

const ROOT = path.join(__dirname, '..', '..');

/**
 * Starts `server/main.ts` (via bench-server-main.ts) in its own Node process (through
 * tsx's loader, one process, no tsx wrapper in between) against `databaseUrl`, and waits until /readyz answers.
 * A separate process gives the server its own event loop: in-process, the load
 * generator's request building and response parsing would run on the server's thread
 * and the figures would measure both together.
 */
export async function startServerProcess(
  databaseUrl: string,
  extraEnv: Record<string, string> = {},
  /** Another server to run in the same way (bench:crud's bare node:http + pg ceiling). */
  main = path.join('scripts', 'bench', 'bench-server-main.ts')
): Promise<ServerProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: process.env.BENCH_SERVER_LOG_LEVEL || 'warn',
    // Benchmarks without a bearer token measure the server without authorization; the token runs set it back.
    AUTH_REQUIRED: 'false',
    // Benchmarks measure the server, not its rate limits.
    RATE_LIMIT: 'false',
    ...extraEnv,
  };
  delete env.PUBLIC_URL;
  // BENCH_SERVER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p", profiles the server itself.
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS || '').split(' ').filter(Boolean);
  // npm start's own flags (package.json): the benchmark measures the server as users run it.
  const child = spawn(process.execPath, [...nodeArgs, ...startArgumentsFor(main)], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  forwardPrefixed(child);
  let stopped = false;
  let status: string | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      status = signal ? `signal ${signal}` : `exit code ${code}`;
      if (!stopped) {
        // LOG_LEVEL=warn hides the server's own "shutting down" line: say it here.
        process.stderr.write(`[server] the server process ended unexpectedly (${status})\n`);
      }
      resolve(code);
    })
  );
  const stop = async (): Promise<void> => {
    if (stopped || child.exitCode !== null || child.signalCode !== null) {
      return;
    }
    stopped = true;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitUntilReady(url, exited);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, pid: child.pid as number, stop, exitStatus: () => status };
}

async function waitUntilReady(url: string, exited: Promise<number | null>, timeoutMs = 120000): Promise<void> {
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exitCode !== undefined) {
      throw new Error(`server exited with code ${exitCode} before it was ready`);
    }
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.status === 200) {
        return;
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`server not ready at ${url}/readyz after ${timeoutMs / 1000} s`);
}

function forwardPrefixed(child: ChildProcess): void {
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    let pending = '';
    stream?.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        process.stderr.write(`[server] ${line}\n`);
      }
    });
  }
}
