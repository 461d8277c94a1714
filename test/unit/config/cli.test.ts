import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  assembleEvaluateBatchScript,
  assembleEvaluateOneScript,
  assembleEvaluateScript,
  assembleQuotaReportScript,
  assembleRefundScript,
} from '../../../src/backend/redis/lua-assembler.js';
import { runCli } from '../../../src/cli.js';
import { checkConfigDir } from '../../../src/config/check.js';
import { fixture } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PKG_VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe('meshlimit check-config', () => {
  it('exit 0 and a summary for a valid directory', async () => {
    const r = await run('check-config', fixture('upstream_readme'));
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^config OK: 10 files, 10 domains, 27 rules\nversion [0-9a-f]{64}\n/);
    expect(r.stdout).toContain('\n  messaging.message_type_marketing.to_number: 5 per day, fixed_window\n');
    expect(r.stdout).toContain('\n  internal.ldap: unlimited\n');
    expect(r.stdout).toContain('\n  example6.service.user_user-a: 10 per second, fixed_window [shadow_mode]\n');
    expect(r.stdout).toContain('\n  test-domain.multi: 20 per 5 minutes, fixed_window\n');
    expect(r.stdout).toContain('\n  test-domain.soft: 1000 per hour, fixed_window [quota_mode]\n');
    expect(r.stdout).not.toContain('\nwarning: ');
  });

  it('exit 1 and every error for an invalid directory', async () => {
    const r = await run('check-config', fixture('several_broken_files'));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      [
        'config invalid: 2 errors',
        `  ${fixture('several_broken_files', 'a.yaml')}: descriptors[0].rate_limit.unit: invalid rate limit unit 'century' (line 5); expected one of second, minute, hour, day, week, month, year`,
        `  ${fixture('several_broken_files', 'b.yaml')}: descriptors[0].key: descriptor has empty key (line 3)`,
        '',
      ].join('\n'),
    );
  });

  it('exit 1 for a missing directory', async () => {
    const r = await run('check-config', fixture('no_such_dir'));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`config invalid: 1 error\n  ${fixture('no_such_dir')}: cannot read config directory: it does not exist\n`);
  });

  it('exit 2 on usage errors', async () => {
    expect((await run()).code).toBe(2);
    expect((await run('check-config')).code).toBe(2);
    expect((await run('check-config', '--frob', 'a')).code).toBe(2);
    const unknown = await run('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.startsWith("meshlimit: unknown command 'frobnicate'\n\nusage: meshlimit COMMAND [ARGS]")).toBe(true);
    const flag = await run('--frobnicate');
    expect([flag.code, flag.stderr.split('\n')[0]]).toEqual([2, "meshlimit: unknown option '--frobnicate'"]);
  });

  it('--help exits 0 with usage on stdout', async () => {
    const r = await run('--help');
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith('usage: meshlimit COMMAND [ARGS]')).toBe(true);
    // Every command, and where the settings are described.
    for (const c of ['serve', 'check-config', 'ask', 'explain', 'print-lua', 'README.md, section "Settings"'])
      expect(r.stdout).toContain(c);
    expect((await run('-h')).stdout).toBe(r.stdout);
    for (const c of ['check-config', 'ask', 'explain', 'print-lua', 'serve']) {
      const sub = await run(c, '--help');
      expect([sub.code, sub.stdout.split('\n')[0]]).toEqual([0, expect.stringMatching(new RegExp(`^usage: meshlimit ${c}`))]);
    }
  });

  it('--version prints the package version and Node.js version', async () => {
    const r = await run('--version');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^meshlimit ${PKG_VERSION.replace(/\./g, '\\.')} \\(.*node ${process.version}\\)\n`));
    expect((await run('-V')).stdout).toBe(r.stdout);
  });

  it('checkConfigDir returns ok/output without throwing for invalid config', async () => {
    const r = await checkConfigDir(fixture('bad_unit'));
    expect(r.ok).toBe(false);
    expect(r.output.split('\n')[0]).toBe('config invalid: 1 error');
  });

  it('as a real process: src/cli.ts sets the exit code', () => {
    const node = (args: string[]): { status: number | null; stdout: string; stderr: string } => {
      const p = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
      return { status: p.status, stdout: p.stdout, stderr: p.stderr };
    };
    const ok = node(['check-config', 'config']);
    expect(ok.status).toBe(0);
    expect(ok.stdout.startsWith('config OK: 2 files, 2 domains, 10 rules')).toBe(true);
    expect(node(['check-config', fixture('bad_unit')]).status).toBe(1);
    expect(node([]).status).toBe(2);
  });
});

const LIST =
  '  evaluate\n  evaluate-one fixed_window\n  evaluate-one sliding_window\n  evaluate-one token_bucket\n  evaluate-batch\n  refund\n  quota-report\n';

describe('meshlimit print-lua', () => {
  it('prints exactly the source the backend registers on stdout, and its SHA1 on stderr', async () => {
    const script = assembleEvaluateOneScript('token_bucket');
    const r = await run('print-lua', 'evaluate-one', 'token_bucket');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(script.source);
    expect(r.stderr).toBe(`-- evaluate-one token_bucket: sha1 ${script.sha1}, ${Buffer.byteLength(script.source)} bytes\n`);
    expect(createHash('sha1').update(r.stdout).digest('hex')).toBe(script.sha1);
  });

  it.each([
    ['evaluate', assembleEvaluateScript],
    ['evaluate-batch', assembleEvaluateBatchScript],
    ['refund', assembleRefundScript],
    ['quota-report', assembleQuotaReportScript],
  ] as const)('prints the %s script', async (name, assemble) => {
    const r = await run('print-lua', name);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(assemble().source);
  });

  it('exit 2 with the list of scripts and the usage when no script is named', async () => {
    const r = await run('print-lua');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.startsWith(`meshlimit print-lua: expected a script; the scripts:\n${LIST}\nusage: meshlimit print-lua SCRIPT\n`)).toBe(
      true,
    );
  });

  it('exit 2 with the list of scripts for an unknown script, or evaluate-one without a known algorithm', async () => {
    for (const args of [['evaluat'], ['evaluate-one'], ['evaluate-one', 'leaky_bucket'], ['evaluate', 'extra']]) {
      const r = await run('print-lua', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.startsWith(`meshlimit print-lua: unknown script '${args.join(' ')}'; the scripts:\n${LIST}\n`)).toBe(true);
    }
  });

  it('runs as a command: the source alone on stdout', () => {
    const p = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'print-lua', 'evaluate-one', 'fixed_window'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(p.status).toBe(0);
    expect(p.stdout).toBe(assembleEvaluateOneScript('fixed_window').source);
    expect(p.stderr).toMatch(/^-- evaluate-one fixed_window: sha1 [0-9a-f]{40}, \d+ bytes\n$/);
  });
});
