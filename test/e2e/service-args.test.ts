import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/service-process.js';

/**
 * The service process's arguments (src/main.ts, as `npm run dev` and `node dist/main.js` run it):
 * --help and --version print and exit 0 without serving (anything else: regressions/service-ignored-unknown-flags).
 */
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
// PORT=1 would be refused (EACCES) if the process tried to serve: nothing here may get that far.
const main = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env['PATH'] ?? '', PORT: '1', GRPC_PORT: '1' },
  });

describe('meshlimit service arguments', () => {
  it('--help and -h print the service usage and where the settings are described', () => {
    for (const flag of ['--help', '-h']) {
      const r = main(flag);
      expect([r.status, r.stderr]).toEqual([0, '']);
      expect(r.stdout).toMatch(/^usage: meshlimit serve/);
      expect(r.stdout).toContain('README.md, section "Settings"');
    }
  });

  it('--version prints the package version', () => {
    const r = main('--version');
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout.split('\n')[0]).toMatch(new RegExp(`^meshlimit ${pkg.version.replace(/\./g, '\\.')} \\(.*node ${process.version}\\)$`));
  });
});
