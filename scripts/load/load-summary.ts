import type { LoadSummary } from './load-bundles';

const n = (value: number): string => value.toLocaleString('en-US');

/** The report a person reads after a load (stdout): counts, rates, and every failure with its reason. */
export function formatSummary(summary: LoadSummary): string {
  const lines: string[] = [];
  const seconds = Math.max(summary.seconds, 0.001);
  lines.push(
    `Bundles: ${n(summary.ok)} ok, ${n(summary.failed)} failed${summary.notSent ? ` (${n(summary.notSent)} not sent)` : ''}, of ${n(summary.bundles)}`
  );
  lines.push(`Resources: ${n(summary.resources)} (${n(summary.created)} created)`);
  lines.push(`Elapsed: ${summary.seconds.toFixed(1)} s`);
  lines.push(`Rate: ${n(Math.round(summary.resources / seconds))} resources/s, ${(summary.ok / seconds).toFixed(2)} bundles/s`);
  if (summary.skipped.length > 0) {
    lines.push(`Skipped ${summary.skipped.length} file(s) in the folders that are not FHIR Bundles:`);
    for (const file of summary.skipped) lines.push(`  ${file.name}: ${file.reason}`);
  }
  if (summary.stoppedBecause) {
    lines.push(`Stopped early: ${summary.stoppedBecause}`);
  }
  if (summary.failures.length > 0) {
    lines.push('Failures:');
    for (const failure of summary.failures) {
      lines.push(`  ${failure.name}:`);
      for (const reason of failure.reasons) lines.push(`    ${reason}`);
    }
  }
  return lines.join('\n');
}
