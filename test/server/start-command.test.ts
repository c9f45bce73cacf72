import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startArguments } from '../../scripts/start-command';

const ROOT = path.join(__dirname, '..', '..');

test("the Docker image starts the server with npm start's node command, V8 flags included", () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const cmd = dockerfile.split('\n').filter((line) => line.startsWith('CMD '));
  expect(cmd).toHaveLength(1);
  expect(JSON.parse(cmd[0].slice('CMD '.length))).toEqual(['node', ...startArguments()]);
});

test('npm start gives the server a young generation large enough for its request garbage (--max-semi-space-size)', () => {
  const flag = startArguments().find((a) => a.startsWith('--max-semi-space-size='));
  expect(Number(flag?.split('=')[1])).toBeGreaterThanOrEqual(64);
  expect(startArguments().slice(-3)).toEqual(['--import', 'tsx', 'server/main.ts']);
});
