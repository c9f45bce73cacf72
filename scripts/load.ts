import { Command, InvalidArgumentError } from 'commander';
import { planLoad } from './load/bundle-files';
import { endpoint } from './load/fhir-endpoint';
import { loadBundles } from './load/load-bundles';
import { progressOn, silentProgress } from './load/load-progress';
import { formatSummary } from './load/load-summary';
import { checkServer } from './load/server-check';

/**
 * `npm run --silent load -- <folders or files…>`: loads FHIR Bundle files into a running
 * server over its REST API, as any client would (POST [base], http.html#transaction).
 * Exit code 0 when every Bundle was accepted, 1 when any failed, 2 when nothing could
 * be started (no files, bad options, no server).
 */
const env = process.env;
const DEFAULT_URL = env.FHIR_URL || `http://localhost:${env.PORT || '8080'}/fhir`;

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) {
    throw new InvalidArgumentError('a whole number of 1 or more');
  }
  return parsed;
}

const program = new Command('load')
  .description(
    'Load FHIR Bundle files (.json or .json.gz; a folder: its files of those kinds, not its subfolders) into a FHIR server ' +
      'as they are, one POST per file: transactions stay transactions, batches stay batches. Bundles of type batch and ' +
      'files named *Information* (Synthea hospital and practitioner data) go first, one at a time; then the rest.'
  )
  .argument('<paths...>', 'Bundle files and folders')
  .option('-u, --url <url>', 'FHIR base URL (env FHIR_URL)', DEFAULT_URL)
  .option('-c, --concurrency <n>', 'Bundles in flight at once', positiveInteger, 2)
  .option('-t, --token <token>', 'bearer token sent as Authorization (env FHIR_TOKEN)', env.FHIR_TOKEN)
  .option('-q, --quiet', 'no progress output, only the summary')
  .showHelpAfterError()
  // Usage errors exit 2, like every other way of not starting; --help still exits 0.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .action(async (paths: string[], options: { url: string; concurrency: number; token?: string; quiet?: boolean }) => {
    let target;
    let plan;
    try {
      target = endpoint(options.url, options.token);
      plan = await planLoad(paths);
      if (plan.shared.length + plan.rest.length + plan.invalid.length === 0) {
        throw new Error(`no Bundle files (.json, .json.gz) in ${paths.join(', ')}`);
      }
      await checkServer(target);
    } catch (err) {
      console.error(`load: ${(err as Error).message}`);
      process.exitCode = 2;
      return;
    }
    if (!options.quiet) {
      process.stderr.write(
        `Loading ${plan.shared.length + plan.rest.length} Bundle file(s) into ${target.base}: ` +
          `${plan.shared.length} shared first, then ${plan.rest.length} with concurrency ${options.concurrency}\n`
      );
    }
    const summary = await loadBundles(plan, {
      target,
      concurrency: options.concurrency,
      progress: options.quiet ? silentProgress : progressOn(process.stderr),
    });
    console.log(formatSummary(summary));
    process.exitCode = summary.failed > 0 ? 1 : 0;
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`load: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 2;
});
