import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, spawnService, type ServiceProcess } from '../support/service-process.js';

/**
 * README.md's "A two-minute tour", run as written against a started service with the example
 * config: every command of its sh block in order (through bash, `npm run -s ask` included), each
 * `# ...` line right under a command being that command's expected output (`...` stands for any
 * text). Only the ports differ: the service runs on free ports, so `localhost:8080` is replaced
 * by its HTTP address and GRPC_PORT is set in the environment, which `ask` reads as the tour
 * says. A tour step that stops working, or an expected output that drifts, fails here.
 */
interface Step {
  readonly command: string;
  readonly expected: readonly string[];
}

/** The tour's commands and their expected outputs, from the first sh block after its heading. */
function tourSteps(readme: string): Step[] {
  const start = readme.indexOf('## A two-minute tour');
  const open = readme.indexOf('```sh\n', start);
  const close = readme.indexOf('\n```', open + 6);
  expect(
    [start, open, close].every((i) => i >= 0),
    'README.md has its tour and an sh block in it',
  ).toBe(true);
  const steps: { command: string; expected: string[] }[] = [];
  let current: { command: string; expected: string[] } | undefined;
  let continued = false;
  for (const line of readme.slice(open + 6, close).split('\n')) {
    if (continued) {
      current!.command += `\n${line}`;
      continued = line.endsWith('\\');
    } else if (line.trim() === '') current = undefined;
    else if (line.startsWith('#')) current?.expected.push(line.replace(/^# ?/, ''));
    else {
      current = { command: line, expected: [] };
      steps.push(current);
      continued = line.endsWith('\\');
    }
  }
  return steps;
}

/** An expected line as a pattern: literal text, `...` for anything. */
const pattern = (expected: string): RegExp => new RegExp(`^${expected.split('...').map(escape).join('.*')}$`);
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

let svc: ServiceProcess;
beforeAll(async () => {
  // The tour runs after `npm start`, which builds dist/ (what `npm run -s ask` runs).
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  expect(build.status, build.stderr + build.stdout).toBe(0);
  svc = await spawnService({ CONFIG_DIR: path.join(ROOT, 'config') }, { what: 'the example config' });
}, 120_000);
afterAll(async () => svc?.proc.stop());

describe("README.md's two-minute tour", () => {
  it('works as written, a limit visibly trips, and each shown output matches', () => {
    const steps = tourSteps(readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
    expect(steps.length).toBeGreaterThanOrEqual(6);
    const outputs: string[] = [];
    for (const step of steps) {
      const command = step.command.replaceAll('localhost:8080', svc.httpUrl.replace('http://', ''));
      const r = spawnSync('bash', ['-o', 'pipefail', '-c', command], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
        env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? ROOT, GRPC_PORT: String(svc.grpcPort) },
      });
      const tripped = /--count/.test(command) && r.status === 3; // ask's exit code for OVER_LIMIT, as the README says
      expect(r.status === 0 || tripped, `${step.command}\nexit ${r.status}\n${r.stdout}${r.stderr}`).toBe(true);
      expect(r.stdout.trim(), step.command).not.toBe('');
      const lines = r.stdout.trimEnd().split('\n');
      if (step.expected.length > 0) {
        expect(lines.length, `${step.command}\n${r.stdout}`).toBe(step.expected.length);
        step.expected.forEach((e, i) => expect(lines[i], step.command).toMatch(pattern(e)));
      }
      outputs.push(r.stdout);
    }
    const all = outputs.join('');
    // The trip: a call admitted, then calls denied, by one `ask --count`.
    expect(all).toMatch(/\d+\/\d+ OK .*\n\d+\/\d+ OVER_LIMIT /);
    // The last two steps: the loaded config and the metrics it produced.
    expect(outputs.at(-2)).toMatch(/^\{"version":"[0-9a-f]{64}"/);
    expect(outputs.at(-1)).toMatch(/^meshlimit_build_info\{version="/m);
    expect(outputs.at(-1)).toMatch(/^meshlimit_config_info\{version="[0-9a-f]{64}"\} 1$/m);
    expect(outputs.at(-1)).toMatch(
      /^meshlimit_decisions_total\{domain="edge",rule="edge\.company_id\.path_\/api\/v1\/exports\/\*",outcome="over_limit"\} 2$/m,
    );
  });
});
