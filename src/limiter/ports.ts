import type { CounterOp, DescriptorEntry, EvaluateOptions, EvaluateResult, Rule } from './types.js';

/**
 * The ports of the rate-limit domain: what the limiter needs from the outside, declared here by
 * the layer that uses them and implemented by the layers that provide them (`src/config` serves
 * {@link ConfigSource}, `src/backend` the {@link Backend}s). Nothing in `src/limiter` imports
 * those layers; the composition root (`src/app.ts`) plugs them in.
 */

/**
 * A counter store. Implementations: memory (in-process) and Redis. All of them pass
 * `test/integration/backend/conformance.ts`.
 *
 * Semantics (exact, see src/limiter/algorithms/evaluate.ts for the reference): ops are evaluated
 * in order against a working copy of state (so two ops on the same key see each other), then the
 * working copy is committed only if the request is admitted (or chargeOnDeny is set).
 */
export interface Backend {
  readonly kind: string;
  evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult>;
  /**
   * The same evaluation answered synchronously, for a backend that needs no I/O (the memory
   * backend): the limiter then decides without a promise. Throws what `evaluate` rejects with.
   * Wrappers (breaker, failure policy, instrumentation) do not offer it, so a wrapped backend is
   * always asked through `evaluate`.
   */
  evaluateSync?(ops: readonly CounterOp[], options: EvaluateOptions): EvaluateResult;
  /**
   * Deletes counters (the admin API's counter reset); resolves with how many existed. Keys passed
   * together belong to one descriptor and share its hash tag (one Redis Cluster slot). Wrappers
   * do not offer it: the admin API calls the store itself.
   */
  deleteKeys?(keys: readonly string[]): Promise<number>;
  /**
   * Reads counters without writing anything (`POST /v1/explain`): each key's stored string (null
   * when absent or expired) and the store's clock in Unix ms (Redis `TIME`; `now` when given, the
   * test clock). Implemented by the stores themselves (memory, Redis, Redis Cluster), not by the
   * decorators around them: explain reads the store, it does not ask for a decision.
   */
  readStates?(keys: readonly string[], now?: number): Promise<StoredStates>;
  /** True when the backend can currently serve requests. */
  isReady(): boolean;
  /** Stops accepting work and releases connections/timers. */
  close(): Promise<void>;
}

/**
 * A compiled, immutable descriptor config. Built once per (re)load by `compileConfig`, swapped
 * atomically by the store; a request reads one snapshot for its whole evaluation.
 */
export interface ConfigSnapshot {
  /** Content hash of all loaded files (changes when any file changes). */
  readonly version: string;
  readonly loadedAt: Date;
  /** Absolute or directory-relative paths of the files loaded, sorted. */
  readonly files: readonly string[];
  /** Known domain names. */
  readonly domainNames: readonly string[];
  hasDomain(domain: string): boolean;
  /**
   * envoyproxy/ratelimit matching: at each level try `key_value` exactly, then wildcard values
   * (config order), then the bare `key`; descend into children while entries remain; a rule
   * applies only when it sits at the request's last entry. Returns undefined when nothing applies
   * or the domain is unknown.
   */
  findRule(domain: string, entries: readonly DescriptorEntry[]): Rule | undefined;
  /** A JSON-serialisable view of the config (for GET /rlconfig and logs). */
  dump(): unknown;
}

/** Where the limiter reads the current snapshot from. */
export interface ConfigSource {
  current(): ConfigSnapshot;
}

/** What {@link Backend.readStates} returns. */
export interface StoredStates {
  /** The store's clock when it read, Unix ms. */
  readonly now: number;
  /** One per key asked, in order: the stored string (one char per byte), or null. */
  readonly values: readonly (string | null)[];
}
