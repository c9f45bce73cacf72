import cliProgress from 'cli-progress';
import type { BundleResult } from './bundle-result';

/** How far a load has come. */
export interface LoadCounts {
  /** Bundles to send in all. */
  total: number;
  /** Bundles answered (ok or failed). */
  done: number;
  failed: number;
  resources: number;
}

/** Where a load reports as it goes: on stderr, so that stdout keeps only the summary. */
export interface LoadProgress {
  update(counts: LoadCounts): void;
  /** A bundle failed: say so now, not only in the summary at the end. */
  failed(result: BundleResult): void;
  stop(): void;
}

export const silentProgress: LoadProgress = { update() {}, failed() {}, stop() {} };

/** A progress bar when `stream` is a terminal, else a line every `intervalMs` (logs, CI). */
export function progressOn(stream: NodeJS.WriteStream, intervalMs = 10000): LoadProgress {
  return stream.isTTY ? new ProgressBar(stream) : new ProgressLines(stream, intervalMs);
}

function perSecond(count: number, startedAt: number): string {
  const seconds = (performance.now() - startedAt) / 1000;
  return seconds > 0 ? Math.round(count / seconds).toLocaleString('en-US') : '0';
}

export function failureLine(result: BundleResult): string {
  return `failed: ${result.name}: ${result.reasons.join(' | ')}`;
}

class ProgressBar implements LoadProgress {
  private readonly bars: cliProgress.MultiBar;
  private readonly bar: cliProgress.SingleBar;
  private readonly startedAt = performance.now();

  constructor(stream: NodeJS.WriteStream) {
    // A MultiBar (of one) for its log(), which prints a line above the bar without tearing it.
    this.bars = new cliProgress.MultiBar(
      {
        stream,
        format: '{bar} {value}/{total} bundles | {resources} resources, {rate}/s | {failed} failed | {duration_formatted}, ETA {eta_formatted}',
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic
    );
    this.bar = this.bars.create(0, 0, { resources: '0', rate: '0', failed: 0 });
  }

  update(counts: LoadCounts): void {
    this.bar.setTotal(counts.total);
    this.bar.update(counts.done, {
      resources: counts.resources.toLocaleString('en-US'),
      rate: perSecond(counts.resources, this.startedAt),
      failed: counts.failed,
    });
  }

  failed(result: BundleResult): void {
    this.bars.log(`${failureLine(result)}\n`);
  }

  stop(): void {
    this.bars.stop();
  }
}

class ProgressLines implements LoadProgress {
  private readonly startedAt = performance.now();
  private counts: LoadCounts | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    intervalMs: number
  ) {
    this.timer = setInterval(() => this.print(), intervalMs);
    this.timer.unref();
  }

  update(counts: LoadCounts): void {
    this.counts = { ...counts };
  }

  failed(result: BundleResult): void {
    this.stream.write(`${failureLine(result)}\n`);
  }

  private print(): void {
    const c = this.counts;
    if (!c) return;
    const seconds = Math.round((performance.now() - this.startedAt) / 1000);
    this.stream.write(
      `… ${c.done}/${c.total} bundles, ${c.resources.toLocaleString('en-US')} resources (${perSecond(c.resources, this.startedAt)}/s), ${c.failed} failed, ${seconds} s\n`
    );
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
