import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { assembleEvaluateBatchScript, assembleEvaluateOneScript, assembleEvaluateScript, assembleRefundScript } from '../../../src/backend/redis/lua-assembler.js';
import { runCli } from '../../../src/cli.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

const LIST = '  evaluate\n  evaluate-one fixed_window\n  evaluate-one sliding_window\n  evaluate-one token_bucket\n  evaluate-batch\n  refund\n';

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
  ] as const)('prints the %s script', async (name, assemble) => {
    const r = await run('print-lua', name);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(assemble().source);
  });

  it('exit 2 with the list of scripts and the usage when no script is named', async () => {
    const r = await run('print-lua');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.startsWith(`meshlimit print-lua: expected a script; the scripts:\n${LIST}\nusage: meshlimit check-config DIR\n`)).toBe(true);
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
    const p = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'print-lua', 'evaluate-one', 'fixed_window'], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    expect(p.status).toBe(0);
    expect(p.stdout).toBe(assembleEvaluateOneScript('fixed_window').source);
    expect(p.stderr).toMatch(/^-- evaluate-one fixed_window: sha1 [0-9a-f]{40}, \d+ bytes\n$/);
  });
});
