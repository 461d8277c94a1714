import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * test/prerequisites.mjs, `npm test`'s pretest step: with the programs the tests need missing,
 * it installs them (root with apt-get) or stops at once with the command to run. Run here with a
 * PATH of our choosing: an empty directory, or one holding a stand-in `apt-get` that records
 * its arguments and "installs" by creating the programs (the real apt-get is not run by tests).
 */
const SCRIPT = fileURLToPath(new URL('../../prerequisites.mjs', import.meta.url));
const ALL = ['redis-server', 'redis-cli', 'prometheus', 'promtool', 'openssl', 'kubectl', 'chromium'];
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = (): string => {
  const d = mkdtempSync(path.join(tmpdir(), 'meshlimit-prereq-'));
  dirs.push(d);
  return d;
};
const run = (env: Record<string, string>) => {
  const r = spawnSync(process.execPath, [SCRIPT], { env, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stderr: r.stderr };
};
/** A stand-in apt-get in `dir`: logs each call, and `install` creates every program the tests need in `dir`. */
function fakeAptGet(dir: string): string {
  const log = path.join(dir, 'apt.log');
  const makeAll = ALL.map((b) => `printf '#!/bin/sh\\n' > "${dir}/${b}"; chmod +x "${dir}/${b}"`).join('\n  ');
  writeFileSync(
    path.join(dir, 'apt-get'),
    `#!/bin/sh\nPATH="$PATH:/usr/bin:/bin"\necho "$*" >> "${log}"\nif [ "$1" = install ]; then\n  ${makeAll}\nfi\n`,
  );
  chmodSync(path.join(dir, 'apt-get'), 0o755);
  return log;
}
const isRoot = process.getuid?.() === 0;

describe('npm test prerequisites', () => {
  it('says nothing when everything is on PATH (this machine)', () => {
    expect(run({ PATH: process.env.PATH ?? '', MESHLIMIT_NO_INSTALL: '1' })).toEqual({ status: 0, stderr: '' });
  });

  it('without apt-get: stops, naming what is missing and the Debian packages', () => {
    const r = run({ PATH: tempDir() });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      'the tests need redis-server, redis-cli, prometheus, promtool, openssl, kubectl, chromium, which are not on PATH',
    );
    expect(r.stderr).toContain(
      'install redis-server, redis-tools, prometheus, openssl, kubernetes-client, chromium (the Debian/Ubuntu package names)',
    );
  });

  it('with apt-get but told not to install: prints the exact apt-get command', () => {
    const dir = tempDir();
    const log = fakeAptGet(dir);
    const r = run({ PATH: dir, MESHLIMIT_NO_INSTALL: '1' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `\n  ${isRoot ? '' : 'sudo '}apt-get install -y --no-install-recommends redis-server redis-tools prometheus openssl kubernetes-client chromium\n`,
    );
    expect(() => readFileSync(log)).toThrow(/ENOENT/);
  });

  it(isRoot ? 'as root with apt-get: installs the missing packages, then passes' : 'not root: prints the sudo command', () => {
    const dir = tempDir();
    const log = fakeAptGet(dir);
    const r = run({ PATH: dir });
    if (isRoot) {
      expect(r.status).toBe(0);
      expect(readFileSync(log, 'utf8')).toBe(
        'update -qq\ninstall -y -qq --no-install-recommends redis-server redis-tools prometheus openssl kubernetes-client chromium\n',
      );
    } else {
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(
        'sudo apt-get install -y --no-install-recommends redis-server redis-tools prometheus openssl kubernetes-client chromium',
      );
    }
  });
});
