import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

test('cli validate applies profiles offline: R4 vital signs by code, --profile, and profiles given with --with', () => {
  // HL7's f202 is a body temperature without an effective time, which R4's bodytemp profile requires.
  const f202 = cli('validate', path.join(HL7_EXAMPLES_DIR, 'Observation-f202.json'));
  expect(f202.status).toBe(1);
  expect(f202.stdout).toContain('Observation.effective[x]');

  const patient = path.join(HL7_EXAMPLES_DIR, 'Patient-example.json');
  const unknown = cli('validate', patient, '--profile', 'http://example.org/fhir/StructureDefinition/nowhere');
  expect(unknown.status).toBe(1);
  expect(unknown.stdout).toContain('is not known to this server');

  // HL7's actualgroup profile (Group.actual fixed to true) under a canonical of its own, given as a file.
  const dir = mkdtempSync(path.join(tmpdir(), 'cli-profiles-'));
  try {
    const profile = { ...JSON.parse(readFileSync(path.join(HL7_EXAMPLES_DIR, 'StructureDefinition-actualgroup.json'), 'utf8')), url: 'http://example.org/fhir/StructureDefinition/actual-group' };
    writeFileSync(path.join(dir, 'profile.json'), JSON.stringify(profile));
    const group = { resourceType: 'Group', type: 'person', actual: false };
    writeFileSync(path.join(dir, 'group.json'), JSON.stringify(group));
    const checked = cli('validate', path.join(dir, 'group.json'), '--profile', profile.url, '--with', path.join(dir, 'profile.json'));
    expect(checked.status).toBe(1);
    expect(checked.stdout).toContain('Group.actual');
    writeFileSync(path.join(dir, 'group.json'), JSON.stringify({ ...group, actual: true }));
    expect(cli('validate', path.join(dir, 'group.json'), '--profile', profile.url, '--with', path.join(dir, 'profile.json')).status).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cli with an unknown command explains itself and fails', () => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/cli.ts', 'frobnicate'], { cwd: ROOT, encoding: 'utf8' });
  expect(result.status).not.toBe(0);
  expect(result.stderr).toContain("unknown command 'frobnicate'");
});
