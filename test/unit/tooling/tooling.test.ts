import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The three checks `npm test` runs before the tests (npm run lint): the layer check
 * (dependency-cruiser, .dependency-cruiser.cjs), the formatter (prettier --check) and the linter
 * (eslint). Each must fail on a deliberately broken input, or it would pass on anything.
 */
const ROOT = path.resolve(import.meta.dirname, '../../..');
const BIN = (name: string): string => path.join(ROOT, 'node_modules', '.bin', name);
const FIXTURES = path.join(ROOT, 'test/fixtures/lint');

function run(cmd: string, args: string[], cwd = ROOT, input?: string): { status: number | null; out: string } {
  const r = spawnSync(BIN(cmd), args, { cwd, encoding: 'utf8', input, timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('layer check (dependency-cruiser)', () => {
  // A copy of the real src/ with one edge added, checked with the real config.
  const tmp = mkdtempSync(path.join(tmpdir(), 'meshlimit-layers-'));
  cpSync(path.join(ROOT, 'src'), path.join(tmp, 'src'), { recursive: true });
  cpSync(path.join(ROOT, '.dependency-cruiser.cjs'), path.join(tmp, '.dependency-cruiser.cjs'));
  cpSync(path.join(ROOT, 'tsconfig.json'), path.join(tmp, 'tsconfig.json'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const cruise = (): { status: number | null; out: string } =>
    run('depcruise', ['src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'], tmp);
  const addFile = (file: string, text: string): (() => void) => {
    writeFileSync(path.join(tmp, file), text);
    return () => rmSync(path.join(tmp, file));
  };

  it('passes on the tree as it is', () => {
    const r = cruise();
    expect(r.status, r.out).toBe(0);
  });

  it('fails on an edge from the domain back up to a backend, naming both files', () => {
    const remove = addFile(
      'src/limiter/back-edge.ts',
      "import type { BackendStack } from '../backend/stack.js';\nexport type Stack = BackendStack;\n",
    );
    try {
      const r = cruise();
      expect(r.status).not.toBe(0);
      expect(r.out).toContain('limiter-is-the-domain: src/limiter/back-edge.ts → src/backend/stack.ts');
    } finally {
      remove();
    }
  });

  it('fails on a cycle between two folders', () => {
    const removeA = addFile(
      'src/backend/redis/cycle-a.ts',
      "import type { CircuitState } from '../resilience/circuit-breaker.js';\nexport type A = CircuitState;\n",
    );
    const removeB = addFile(
      'src/backend/resilience/cycle-b.ts',
      "import type { RedisType } from '../redis/connection.js';\nexport type B = RedisType;\n",
    );
    try {
      const r = cruise();
      expect(r.status).not.toBe(0);
      expect(r.out).toMatch(/no-folder-cycle: src\/backend\/redis →\s+src\/backend\/resilience →\s+src\/backend\/redis/);
    } finally {
      removeA();
      removeB();
    }
  });
});

describe('formatter (prettier)', () => {
  it('flags a misformatted file', () => {
    // The fixture is in .prettierignore so the repo check passes; --ignore-path= checks it anyway.
    const r = run('prettier', ['--check', '--ignore-path=', path.join(FIXTURES, 'misformatted.ts')]);
    expect(r.status).not.toBe(0);
    expect(r.out).toContain('misformatted.ts');
  });
});

describe('linter (eslint)', () => {
  it('flags a lint error', () => {
    const r = run('eslint', ['--no-ignore', path.join(FIXTURES, 'lint-error.ts')]);
    expect(r.status).not.toBe(0);
    expect(r.out).toContain('eqeqeq');
    expect(r.out).toContain('@typescript-eslint/no-unused-vars');
  });

  it('flags a function of more than 80 lines in src/', () => {
    const text = readFileSync(path.join(FIXTURES, 'long-function.ts'), 'utf8');
    const r = run('eslint', ['--stdin', '--stdin-filename', 'src/long-function.ts'], ROOT, text);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/Function 'long' has too many lines \(\d+\)\. Maximum allowed is 80/);
  });
});
