import { performance } from 'node:perf_hooks';
import { NoConfigError } from '../errors.js';
import type { ConfigSnapshot, ConfigSource } from '../limiter/ports.js';
import type { CompiledSnapshot } from './compiled.js';
import type { CompileOptions } from './compile.js';
import type { ReloadEvent, WatcherLogger } from './watcher.js';
import { compileXdsResources, type XdsRateLimitConfig } from './xds-resources.js';

/** The part of `ConfigStore` the updates need. */
export interface XdsStore {
  current(): CompiledSnapshot;
  swap(next: CompiledSnapshot): unknown;
}

/** What the xDS client answers: an ACK, or a NACK carrying `message` as its error_detail. */
export type XdsApplyResult = { readonly ok: true } | { readonly ok: false; readonly message: string };

export interface XdsConfigUpdatesOptions {
  /** Holds an empty snapshot until the first config arrives. */
  readonly store: XdsStore;
  /**
   * FORCE_START_WITHOUT_INITIAL_CONFIG: serve the empty snapshot until the first config arrives
   * (ready, every request answered OK without a limit). Otherwise not ready, and requests fail
   * with {@link NoConfigError} until then.
   */
  readonly forceStart: boolean;
  readonly compile?: CompileOptions;
  readonly logger?: WatcherLogger;
  /** Called after every response: the same events as the directory watcher, with trigger `xds`. */
  readonly onReload?: (event: ReloadEvent) => void;
}

/**
 * Where the xDS client's responses land, transport-free: each state of the world (every resource
 * of a response) is compiled like a config directory (./xds-resources.ts) and swapped in
 * atomically; a config that fails validation keeps the current snapshot and gives the message the
 * client NACKs with. Counted and logged through the same reload events as file reloads.
 */
export class XdsConfigUpdates {
  readonly #opts: XdsConfigUpdatesOptions;
  #received = false;

  constructor(options: XdsConfigUpdatesOptions) {
    this.#opts = options;
  }

  /** True once a config from the management server has been applied. */
  hasConfig(): boolean {
    return this.#received;
  }

  /** Ready to answer requests: a config has arrived, or FORCE_START_WITHOUT_INITIAL_CONFIG. */
  ready(): boolean {
    return this.#received || this.#opts.forceStart;
  }

  /** What health checks should say while no config has arrived; undefined once one has. */
  waitingDetail(): string | undefined {
    if (this.#received) return undefined;
    return this.#opts.forceStart
      ? 'no descriptor config from the xDS management server yet; answering from an empty config (FORCE_START_WITHOUT_INITIAL_CONFIG)'
      : 'waiting for the first descriptor config from the xDS management server';
  }

  /**
   * The limiter's config source: the store's snapshot, except that before the first config
   * (without FORCE_START_WITHOUT_INITIAL_CONFIG) a request fails with {@link NoConfigError}
   * rather than being answered from the empty placeholder.
   */
  source(): ConfigSource {
    return {
      current: (): ConfigSnapshot => {
        if (!this.#received && !this.#opts.forceStart) {
          throw new NoConfigError('no descriptor config has arrived from the xDS management server yet');
        }
        return this.#opts.store.current();
      },
    };
  }

  /** Compiles and installs one state of the world. Never throws. */
  apply(resources: readonly XdsRateLimitConfig[]): XdsApplyResult {
    const { store, logger } = this.#opts;
    const t0 = performance.now();
    let next: CompiledSnapshot;
    try {
      next = compileXdsResources(resources, this.#opts.compile);
    } catch (err) {
      return this.reject(err instanceof Error ? err : new Error(String(err)), t0);
    }
    const previousVersion = store.current().version;
    const first = !this.#received;
    // The first config is installed even when it is as empty as the placeholder: it is the one
    // that makes the service ready.
    const changed = first || next.version !== previousVersion;
    // Received before the swap: its listeners (readiness) must already see the service ready.
    this.#received = true;
    if (changed) store.swap(next);
    for (const w of next.warnings) logger?.warn({ file: w.file, field: w.field }, w.message);
    if (first) {
      logger?.info(
        { version: next.version, domains: next.domainNames.length, rules: next.ruleCount },
        'first descriptor config received from the xDS management server',
      );
    }
    const durationMs = performance.now() - t0;
    this.#emit({ ok: true, version: next.version, previousVersion, changed, trigger: 'xds', durationMs, warnings: next.warnings });
    return { ok: true };
  }

  /**
   * A response that could not be turned into resources at all (undecodable bytes, a resource of
   * another type): counted and reported like an invalid config. Returns the NACK.
   */
  reject(error: Error, startedAt = performance.now()): XdsApplyResult {
    const keptVersion = this.#opts.store.current().version;
    this.#emit({ ok: false, error, keptVersion, trigger: 'xds', durationMs: performance.now() - startedAt });
    return { ok: false, message: error.message };
  }

  #emit(event: ReloadEvent): void {
    try {
      this.#opts.onReload?.(event);
    } catch (err) {
      this.#opts.logger?.error({ err: String(err) }, 'config reload listener threw');
    }
  }
}
