import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import pino from 'pino';
import { ConfigError, loadConfig } from '../server/config';
import { isBlocking, validateResource } from '../server/validation/validate-resource';
import { openDatabase } from './open-database';

/** Admin CLI: `npm run --silent cli -- <command>`. Settings come from the same env as the server. */
const program = new Command('cli').description('FHIR server administration').showHelpAfterError();

program
  .command('migrate')
  .description('create or upgrade the database schema (the server also does this at start)')
  .action(async () => {
    const db = await openDatabase(loadConfig(), pino({ level: 'warn' }));
    try {
      console.log(`schema up to date (${db.changes} search index changes applied)`);
    } finally {
      await db.close();
    }
  });

program
  .command('validate')
  .description('validate FHIR JSON resource files against the R4 definitions, offline')
  .argument('<files...>', 'JSON files, one resource each')
  .action((files: string[]) => {
    let failed = 0;
    for (const file of files) {
      let resource: unknown;
      try {
        resource = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        console.log(`${file}: not readable JSON: ${(err as Error).message}`);
        failed++;
        continue;
      }
      const issues = validateResource(resource);
      const errors = issues.filter(isBlocking);
      console.log(`${file}: ${errors.length === 0 ? 'valid' : 'INVALID'}`);
      for (const i of issues) {
        console.log(`  ${i.severity} ${i.expression?.join(', ') ?? ''}: ${i.diagnostics ?? i.details?.text ?? ''}`);
      }
      failed += errors.length > 0 ? 1 : 0;
    }
    process.exitCode = failed > 0 ? 1 : 0;
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(err instanceof ConfigError ? `Configuration error: ${err.message}` : err);
  process.exit(1);
});
