import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * What broke: a worktree whose node_modules is a symlink to the main checkout's (as helpers set
 * them up) committed that symlink: .gitignore said `node_modules/`, which matches only a
 * directory. Merged, git replaced the main checkout's node_modules directory with a symlink to
 * itself. The pattern now matches a file or symlink too.
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-gitignore-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('.gitignore', () => {
  it('ignores node_modules when it is a symlink', () => {
    expect(spawnSync('git', ['init', '-q', dir]).status).toBe(0);
    copyFileSync(path.join(ROOT, '.gitignore'), path.join(dir, '.gitignore'));
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    const r = spawnSync('git', ['check-ignore', '-q', 'node_modules'], { cwd: dir });
    expect(r.status, 'git check-ignore node_modules: 0 means ignored').toBe(0);
  });
});
