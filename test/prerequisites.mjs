#!/usr/bin/env node
// `npm test`'s first step (the `pretest` script): the programs the tests start must be on PATH.
//
// The tests talk to real parts: redis-server and redis-cli (Debian: redis-server, which pulls in
// redis-tools), prometheus and promtool (the dashboard and alert tests; Debian: prometheus),
// openssl (the throwaway TLS PKI; Debian: openssl) and kubectl (its built-in kustomize renders
// deploy/'s kustomizations as deploy/README.md does; Debian: kubernetes-client) and chromium (the
// web console's browser test, driven by playwright-core; Debian: chromium). Without them `npm test` used to fail test by
// test, minutes in. Here, in a fraction of a second:
// - all present: nothing is printed;
// - some missing, running as root with apt-get (CI, a fresh container): they are installed
//   (`apt-get update`, `apt-get install --no-install-recommends`), as .ci/run does;
// - otherwise: stop at once, naming what is missing and the exact command to run.
// MESHLIMIT_NO_INSTALL=1 never installs (report only).
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** Program on PATH -> the Debian package that provides it. */
const NEEDED = [
  { bin: 'redis-server', pkg: 'redis-server' },
  { bin: 'redis-cli', pkg: 'redis-tools' },
  { bin: 'prometheus', pkg: 'prometheus' },
  { bin: 'promtool', pkg: 'prometheus' },
  { bin: 'openssl', pkg: 'openssl' },
  { bin: 'kubectl', pkg: 'kubernetes-client' },
  { bin: 'chromium', pkg: 'chromium' },
];

function onPath(bin, env) {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(path.join(dir, bin), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

const missing = (env) => NEEDED.filter((n) => !onPath(n.bin, env));
const packagesOf = (list) => [...new Set(list.map((n) => n.pkg))];

function install(pkgs, env) {
  const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
  console.error(`npm test: installing ${pkgs.join(' ')} (Debian packages; running as root with apt-get)`);
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '--no-install-recommends', ...pkgs],
  ]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env: aptEnv });
    if (r.status !== 0) return false;
  }
  return true;
}

function main(env) {
  const absent = missing(env);
  if (absent.length === 0) return 0;
  const pkgs = packagesOf(absent);
  const names = absent.map((n) => n.bin).join(', ');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const apt = onPath('apt-get', env);
  if (isRoot && apt && env.MESHLIMIT_NO_INSTALL !== '1') {
    const still = install(pkgs, env) ? missing(env) : absent;
    if (still.length === 0) return 0;
    console.error(`npm test: still missing after apt-get: ${still.map((n) => n.bin).join(', ')}`);
    return 1;
  }
  const command = apt
    ? `${isRoot ? '' : 'sudo '}apt-get install -y --no-install-recommends ${pkgs.join(' ')}`
    : `install ${pkgs.join(', ')} (the Debian/Ubuntu package names) with your package manager`;
  console.error(
    `npm test: the tests need ${names}, which ${absent.length === 1 ? 'is' : 'are'} not on PATH.\n` +
      `Run:\n\n  ${command}\n\nthen npm test again (README.md, "Two commands", lists what the tests use).`,
  );
  return 1;
}

process.exitCode = main(process.env);
