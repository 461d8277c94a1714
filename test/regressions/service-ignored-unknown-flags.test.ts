import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/service-process.js';

/**
 * What broke: the service process (src/main.ts; `node dist/main.js`, `npm run dev`) ignored its
 * arguments, so `--help`, `--port=9000` or a typo started a service configured otherwise than its
 * operator thought. Now anything but --help/--version is a usage error (exit 2) before serving.
 */
// PORT=1 would be refused (EACCES) if the process tried to serve: nothing here may get that far.
const main = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env['PATH'] ?? '', PORT: '1', GRPC_PORT: '1' },
  });

describe('the service process', () => {
  it('an unknown flag or argument is a usage error (exit 2), not a started service', () => {
    for (const args of [['--port=9000'], ['serve', '--verbose'], ['frobnicate']]) {
      const r = main(...args);
      expect(r.status, r.stdout + r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(
        /^meshlimit: (unknown flag|unexpected argument) '[^']+'; the service takes no arguments but --help and --version\./,
      );
    }
  });
});
