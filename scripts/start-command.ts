import { readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.join(__dirname, '..');

/**
 * The node arguments of `npm start` (package.json's start script, after `node`), e.g.
 * `--max-semi-space-size=64 --import tsx server/main.ts`: tests and benchmarks that
 * start the server in a process of its own start it exactly as users do, with the same
 * V8 flags, whose effect on throughput the benchmarks measure.
 */
export function startArguments(): string[] {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const words = pkg.scripts.start.trim().split(/\s+/);
  if (words[0] !== 'node' || words.some((w) => /["'$&|;]/.test(w))) {
    throw new Error(`package.json's start script must be a plain "node …" command, got: ${pkg.scripts.start}`);
  }
  return words.slice(1);
}

/** startArguments with another script in place of server/main.ts (a benchmark's server with its own entry point). */
export function startArgumentsFor(main: string): string[] {
  const args = startArguments();
  return [...args.slice(0, -1), main];
}
