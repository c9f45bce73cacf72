/**
 * What a benchmark must undo however it ends (servers, pools, its throw-away database),
 * and whether Ctrl-C / SIGTERM asked it to stop. Cleanups run once, last added first.
 */
export class BenchCleanup {
  interrupted = false;
  private readonly steps: (() => Promise<void>)[] = [];
  private running: Promise<void> | undefined;

  /**
   * `on`, not `once`: Ctrl-C reaches the process twice when started through npm/tsx
   * (from the terminal, and relayed by the tsx wrapper); a second SIGINT without a
   * listener would kill it before the database is dropped.
   */
  constructor(message: string) {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.on(signal, () => {
        if (this.interrupted) return;
        this.interrupted = true;
        console.error(`\n${signal}: ${message}`);
        void this.run().finally(() => process.exit(130));
      });
    }
  }

  add(step: () => Promise<void>): void {
    this.steps.push(step);
  }

  /** Forgets a step already done by the benchmark itself. */
  remove(step: () => Promise<void>): void {
    const i = this.steps.indexOf(step);
    if (i >= 0) this.steps.splice(i, 1);
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      while (this.steps.length) {
        await this.steps.pop()!().catch((err) => console.error('cleanup:', err instanceof Error ? err.message : err));
      }
    })();
    return this.running;
  }
}
