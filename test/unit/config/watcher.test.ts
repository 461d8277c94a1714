import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import type { CompiledSnapshot } from '../../../src/config/compiled.js';
import { loadConfigDir, readConfigDir } from '../../../src/config/loader.js';
import { ConfigStore } from '../../../src/config/store.js';
import { ConfigWatcher, type ConfigWatcherOptions, type ReloadEvent } from '../../../src/config/watcher.js';

/**
 * Watcher tests against real temporary directories. Each wait is bounded (3 s) and keyed on the
 * event it expects, so a slow machine makes the test slower, never flaky-green.
 */
const yaml = (rpu: number): string => `domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, requests_per_unit: ${rpu}}\n`;
const BROKEN = 'domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: fortnight, requests_per_unit: 1}\n';
const rpuOf = (store: ConfigStore<CompiledSnapshot>): number | undefined =>
  store.current().findRule('d', [{ key: 'k', value: 'v' }])?.limits[0]?.requestsPerUnit;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshlimit-config-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Harness {
  readonly store: ConfigStore<CompiledSnapshot>;
  readonly watcher: ConfigWatcher;
  readonly events: ReloadEvent[];
  /** Resolves with the first event (already seen or future) that satisfies `pred`. */
  waitFor(pred: (e: ReloadEvent) => boolean, timeoutMs?: number): Promise<ReloadEvent>;
}

async function startWatcher(dir: string, opts: Partial<ConfigWatcherOptions> = {}): Promise<Harness> {
  const store = new ConfigStore<CompiledSnapshot>(await loadConfigDir(dir));
  const events: ReloadEvent[] = [];
  const waiters: { pred: (e: ReloadEvent) => boolean; resolve: (e: ReloadEvent) => void }[] = [];
  const watcher = new ConfigWatcher({ dir, store, debounceMs: 25, pollIntervalMs: 0, ...opts });
  watcher.onReload((e) => {
    events.push(e);
    for (const w of [...waiters]) {
      if (w.pred(e)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  });
  watcher.start();
  cleanups.push(() => watcher.close());
  const waitFor = (pred: (e: ReloadEvent) => boolean, timeoutMs = 3000): Promise<ReloadEvent> => {
    const seen = events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching reload event within ${timeoutMs} ms; saw ${JSON.stringify(events)}`)),
        timeoutMs,
      );
      waiters.push({
        pred,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  };
  return { store, watcher, events, waitFor };
}

describe('ConfigWatcher', () => {
  it('reloads a good edit and swaps the snapshot', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.yaml'), yaml(5));
    const h = await startWatcher(dir);
    const before = h.store.current().version;
    expect(rpuOf(h.store)).toBe(5);

    await writeFile(join(dir, 'a.yaml'), yaml(7));
    const ev = await h.waitFor((e) => e.ok && e.changed);
    expect(rpuOf(h.store)).toBe(7);
    expect(ev).toMatchObject({ ok: true, changed: true, previousVersion: before, version: h.store.current().version, trigger: 'watch' });
  });

  it('rejects a broken edit, keeps answering with the old config, then recovers', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.yaml'), yaml(5));
    const h = await startWatcher(dir);
    const good = h.store.current();

    await writeFile(join(dir, 'a.yaml'), BROKEN);
    const failed = await h.waitFor((e) => !e.ok);
    if (failed.ok) throw new Error('unreachable');
    expect(failed.error).toBeInstanceOf(ConfigError);
    expect(failed.error.message).toBe(
      `${join(dir, 'a.yaml')}: descriptors[0].rate_limit.unit: invalid rate limit unit 'fortnight' (line 4); expected one of second, minute, hour, day, week, month, year`,
    );
    expect(failed.keptVersion).toBe(good.version);
    expect(h.store.current()).toBe(good);
    expect(rpuOf(h.store)).toBe(5);

    await writeFile(join(dir, 'a.yaml'), yaml(9));
    await h.waitFor((e) => e.ok && e.changed);
    expect(rpuOf(h.store)).toBe(9);
  });

  it('reloads on a Kubernetes ConfigMap symlink swap (..data rename)', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, '..2026_01_01_00_00_00.000000001'));
    await writeFile(join(dir, '..2026_01_01_00_00_00.000000001', 'a.yaml'), yaml(5));
    await symlink('..2026_01_01_00_00_00.000000001', join(dir, '..data'));
    await symlink('..data/a.yaml', join(dir, 'a.yaml'));
    const h = await startWatcher(dir);
    expect(rpuOf(h.store)).toBe(5);
    expect(h.store.current().files).toEqual([join(dir, 'a.yaml')]);

    // What the kubelet's atomic writer does on a ConfigMap update.
    await mkdir(join(dir, '..2026_01_01_00_01_00.000000002'));
    await writeFile(join(dir, '..2026_01_01_00_01_00.000000002', 'a.yaml'), yaml(11));
    await symlink('..2026_01_01_00_01_00.000000002', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await rm(join(dir, '..2026_01_01_00_00_00.000000001'), { recursive: true });

    await h.waitFor((e) => e.ok && e.changed);
    expect(rpuOf(h.store)).toBe(11);
  });

  it('the poll fallback notices changes without fs events', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.yaml'), yaml(5));
    const h = await startWatcher(dir, { watch: false, pollIntervalMs: 40 });
    await writeFile(join(dir, 'a.yaml'), yaml(6));
    const ev = await h.waitFor((e) => e.ok && e.changed);
    expect(ev.trigger).toBe('poll');
    expect(rpuOf(h.store)).toBe(6);
  });

  it('unchanged content emits nothing; a broken config is reported once; reverting reports recovery without a swap', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.yaml'), yaml(5));
    const h = await startWatcher(dir, { watch: false });
    const good = h.store.current();

    await writeFile(join(dir, 'a.yaml'), yaml(5));
    await h.watcher.reload();
    expect(h.events).toEqual([]);

    await writeFile(join(dir, 'a.yaml'), BROKEN);
    await h.watcher.reload();
    await h.watcher.reload();
    expect(h.events.map((e) => e.ok)).toEqual([false]);

    await writeFile(join(dir, 'a.yaml'), yaml(5));
    await h.watcher.reload();
    expect(h.events.map((e) => (e.ok ? `ok changed=${e.changed}` : 'failed'))).toEqual(['failed', 'ok changed=false']);
    expect(h.store.current()).toBe(good);
  });

  it('a removed directory is a failed reload; the old config stays; recreating it recovers', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.yaml'), yaml(5));
    const h = await startWatcher(dir, { watch: false });
    await rm(dir, { recursive: true });
    await h.watcher.reload();
    const failed = h.events[0]!;
    expect(failed.ok).toBe(false);
    if (!failed.ok) expect(failed.error.message).toBe(`${dir}: cannot read config directory: it does not exist`);
    expect(rpuOf(h.store)).toBe(5);

    await mkdir(dir);
    await writeFile(join(dir, 'a.yaml'), yaml(8));
    await h.watcher.reload();
    expect(rpuOf(h.store)).toBe(8);
  });

  it('close() stops reloading', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.yaml'), yaml(5));
    const h = await startWatcher(dir, { pollIntervalMs: 20 });
    await h.watcher.close();
    await writeFile(join(dir, 'a.yaml'), yaml(6));
    await h.watcher.reload();
    expect(h.events).toEqual([]);
    expect(rpuOf(h.store)).toBe(5);
  });
});

describe('readConfigDir', () => {
  it('reads *.yaml and *.yml, skips dotfiles, ..data entries, other extensions and dangling symlinks', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'b.yml'), 'domain: b\n');
    await writeFile(join(dir, 'a.yaml'), 'domain: a\n');
    await writeFile(join(dir, '.hidden.yaml'), 'not: loaded\n');
    await writeFile(join(dir, 'notes.txt'), 'x');
    await mkdir(join(dir, '..data'));
    await writeFile(join(dir, '..data', 'c.yaml'), 'domain: c\n');
    await mkdir(join(dir, 'dir.yaml'));
    await symlink('..data/gone.yaml', join(dir, 'gone.yaml'));
    const r = await readConfigDir(dir);
    expect(r.files.map((f) => f.path)).toEqual([join(dir, 'a.yaml'), join(dir, 'b.yml')]);
    expect(r.skipped).toEqual([join(dir, 'gone.yaml')]);
  });
});
