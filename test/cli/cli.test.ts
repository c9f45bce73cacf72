import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { HL7_EXAMPLES_DIR } from '../support/hl7-examples';

const ROOT = path.join(__dirname, '../..');

function cli(...args: string[]): { status: number | null; stdout: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/cli.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout };
}

test('cli validate accepts a valid resource file and exits 0', () => {
  const result = cli('validate', path.join(HL7_EXAMPLES_DIR, 'Patient-example.json'));
  expect(result.status).toBe(0);
  expect(result.stdout).toContain('Patient-example.json: valid');
});

test('cli validate lists the errors of an invalid file with their paths and exits 1', () => {
  const result = cli('validate', path.join(HL7_EXAMPLES_DIR, 'Questionnaire-qs1.json'));
  expect(result.status).toBe(1);
  expect(result.stdout).toContain('INVALID');
  expect(result.stdout).toContain('Questionnaire.item[0].item[0].linkId');
});

test('cli with an unknown command explains itself and fails', () => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/cli.ts', 'frobnicate'], { cwd: ROOT, encoding: 'utf8' });
  expect(result.status).not.toBe(0);
  expect(result.stderr).toContain("unknown command 'frobnicate'");
});
