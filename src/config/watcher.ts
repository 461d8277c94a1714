import { watch, type FSWatcher } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { CompiledSnapshot, ConfigWarning } from './compiled.js';
import { compileConfig } from './compile.js';
import { readConfigDir, type LoadOptions } from './loader.js';
import type { ConfigSnapshot } from '../limiter/ports.js';
import { contentVersion } from './version.js';

/** pino-compatible subset (also satisfied by `console`). */
export interface WatcherLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

/** What caused a reload: the directory watch, its poll, a `reload()` call, or a response of the xDS management server. */
export type ReloadTrigger = 'watch' | 'poll' | 'manual' | 'xds';

export type ReloadEvent =
  | {
      readonly ok: true;
      readonly version: string;
      readonly previousVersion: string;
      /** False when the files went back to the content of the current snapshot (nothing swapped). */
      readonly changed: boolean;
      readonly trigger: ReloadTrigger;
      readonly durationMs: number;
      readonly warnings: readonly ConfigWarning[];
    }
  | {
      readonly ok: false;
      /** A `ConfigError` / `ConfigErrors` for invalid config; anything else is a bug. */
      readonly error: Error;
      /** The version still being served. */
      readonly keptVersion: string;
      readonly trigger: ReloadTrigger;
      readonly durationMs: number;
    };

/** The part of `ConfigStore` the watcher needs. */
export interface SwappableStore {
  current(): ConfigSnapshot;
  swap(next: CompiledSnapshot): unknown;
}

export interface ConfigWatcherOptions {
  readonly dir: string;
  readonly store: SwappableStore;
  /** Quiet time after the last filesystem event before reloading. Default 200 ms. */
  readonly debounceMs?: number;
  /**
   * Interval of the content poll that catches changes fs.watch misses (network filesystems,
   * edits inside `..data` subdirectories, a replaced directory). 0 disables. Default 2000 ms.
   */
  readonly pollIntervalMs?: number;
  /** Use fs.watch on the directory. Default true. */
  readonly watch?: boolean;
  readonly compile?: LoadOptions;
  readonly logger?: WatcherLogger;
  /** Called after every reload attempt that saw new content (success or failure). */
  readonly onReload?: (event: ReloadEvent) => void;
}

/**
 * Watches a config directory and hot-swaps the snapshot.
 *
 * - Watches the directory, not the files: a Kubernetes ConfigMap update replaces the `..data`
 *   symlink, which a file watch would never see.
 * - Events are debounced; reloads never overlap (a change during a reload runs one more).
 * - A content poll backs fs.watch up. Every attempt is keyed by the content version, so an
 *   unchanged directory costs one read and a hash, and a broken config is reported once, not on
 *   every tick.
 * - On failure the current snapshot stays in place (`ok: false`); on success it is swapped.
 *
 * The store's initial snapshot should come from `loadConfigDir(dir)` with the same `dir` string:
 * its version is then the directory's content version and the first poll is a no-op (otherwise
 * the first check recompiles once, harmlessly).
 */
export class ConfigWatcher {
  readonly #opts: ConfigWatcherOptions;
  readonly #listeners = new Set<(e: ReloadEvent) => void>();
  #fsWatcher: FSWatcher | undefined;
  #watchWarned = false;
  #debounce: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #rerun: ReloadTrigger | undefined;
  /** Content version (or error text) of the last attempt; equal content is not retried. */
  #lastAttempt: string | undefined;
  #started = false;
  #closed = false;

  constructor(options: ConfigWatcherOptions) {
    this.#opts = options;
    if (options.onReload) this.#listeners.add(options.onReload);
  }

  /** Subscribes to reload events; returns the unsubscribe function. */
  onReload(listener: (e: ReloadEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#lastAttempt ??= this.#opts.store.current().version;
    if (this.#opts.watch ?? true) this.#startWatch();
    const poll = this.#opts.pollIntervalMs ?? 2000;
    if (poll > 0) {
      this.#poll = setInterval(() => {
        if ((this.#opts.watch ?? true) && this.#fsWatcher === undefined) this.#startWatch();
        void this.#run('poll');
      }, poll);
      this.#poll.unref();
    }
  }

  /** Checks the directory now (no debounce). Resolves when that check (and any queued one) is done. */
  async reload(): Promise<void> {
    this.#lastAttempt ??= this.#opts.store.current().version;
    await this.#run('manual');
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#debounce);
    clearInterval(this.#poll);
    this.#fsWatcher?.close();
    this.#fsWatcher = undefined;
    await this.#running;
  }

  #startWatch(): void {
    try {
      const w = watch(this.#opts.dir, { persistent: false }, () => this.#onFsEvent());
      w.on('error', (err) => {
        // E.g. the directory was removed; the poll re-establishes the watch when it is back.
        this.#opts.logger?.warn({ dir: this.#opts.dir, err: String(err) }, 'config directory watch failed; relying on polling');
        w.close();
        if (this.#fsWatcher === w) this.#fsWatcher = undefined;
        this.#onFsEvent();
      });
      this.#fsWatcher = w;
      this.#watchWarned = false;
    } catch (err) {
      if (!this.#watchWarned) {
        this.#watchWarned = true;
        this.#opts.logger?.warn({ dir: this.#opts.dir, err: String(err) }, 'cannot watch config directory; relying on polling');
      }
    }
  }

  #onFsEvent(): void {
    if (this.#closed) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.#run('watch'), this.#opts.debounceMs ?? 200);
    this.#debounce.unref();
  }

  #run(trigger: ReloadTrigger): Promise<void> {
    if (this.#running !== undefined) {
      this.#rerun = trigger;
      return this.#running;
    }
    const loop = async (): Promise<void> => {
      let t: ReloadTrigger | undefined = trigger;
      while (t !== undefined && !this.#closed) {
        this.#rerun = undefined;
        await this.#checkOnce(t);
        t = this.#rerun;
      }
    };
    this.#running = loop().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #checkOnce(trigger: ReloadTrigger): Promise<void> {
    const { store, dir, logger } = this.#opts;
    const t0 = performance.now();
    const fail = (error: Error, key: string): void => {
      if (key === this.#lastAttempt) return;
      this.#lastAttempt = key;
      const keptVersion = store.current().version;
      // Logged (once) by the listener, as every reload event.
      this.#emit({ ok: false, error, keptVersion, trigger, durationMs: performance.now() - t0 });
    };

    let files;
    try {
      const read = await readConfigDir(dir, this.#opts.compile);
      files = read.files;
      for (const path of read.skipped) logger?.warn({ path }, 'skipping config file whose symlink target is missing');
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      fail(error, `error:${error.message}`);
      return;
    }
    if (this.#closed) return;
    const version = contentVersion(files);
    if (version === this.#lastAttempt) return;
    const previousVersion = store.current().version;
    if (version === previousVersion) {
      // Back to the content being served (e.g. a broken edit reverted): nothing to swap.
      this.#lastAttempt = version;
      logger?.info({ dir, version }, 'config directory matches the current config again');
      this.#emit({ ok: true, version, previousVersion, changed: false, trigger, durationMs: performance.now() - t0, warnings: [] });
      return;
    }
    let next: CompiledSnapshot;
    try {
      next = compileConfig(files, this.#opts.compile);
    } catch (err) {
      fail(err instanceof Error ? err : new Error(String(err)), version);
      return;
    }
    this.#lastAttempt = version;
    store.swap(next);
    for (const w of next.warnings) logger?.warn({ file: w.file, field: w.field }, w.message);
    this.#emit({ ok: true, version, previousVersion, changed: true, trigger, durationMs: performance.now() - t0, warnings: next.warnings });
  }

  #emit(event: ReloadEvent): void {
    for (const l of [...this.#listeners]) {
      try {
        l(event);
      } catch (err) {
        this.#opts.logger?.error({ err: String(err) }, 'config reload listener threw');
      }
    }
  }
}
