import type { ConfigSnapshot, ConfigSource } from '../limiter/ports.js';

/** Called after a swap with the new and the previous snapshot. */
export type ConfigChangeListener<S extends ConfigSnapshot = ConfigSnapshot> = (next: S, previous: S) => void;

export interface ConfigStoreOptions {
  /** Where a throwing listener's error goes. Default: `process.emitWarning`. */
  readonly onListenerError?: (err: unknown) => void;
}

/**
 * Holds the current snapshot and swaps it atomically: a reader calls `current()` once per request
 * and keeps that snapshot for the whole evaluation, so a reload never splits a request between two
 * configs. Listeners run synchronously after the swap; one throwing does not stop the others.
 */
export class ConfigStore<S extends ConfigSnapshot = ConfigSnapshot> implements ConfigSource {
  #current: S;
  readonly #listeners = new Set<ConfigChangeListener<S>>();
  readonly #onListenerError: (err: unknown) => void;

  constructor(initial: S, options: ConfigStoreOptions = {}) {
    this.#current = initial;
    this.#onListenerError =
      options.onListenerError ??
      ((err) => process.emitWarning(err instanceof Error ? err : new Error(String(err)), { code: 'MESHLIMIT_CONFIG_LISTENER' }));
  }

  current(): S {
    return this.#current;
  }

  /** Installs `next` and notifies listeners. Returns the previous snapshot. */
  swap(next: S): S {
    const previous = this.#current;
    this.#current = next;
    for (const listener of [...this.#listeners]) {
      try {
        listener(next, previous);
      } catch (err) {
        this.#onListenerError(err);
      }
    }
    return previous;
  }

  /** Subscribes to swaps; returns the unsubscribe function. */
  onChange(listener: ConfigChangeListener<S>): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }
}
