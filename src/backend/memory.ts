import { BackendUnavailableError } from '../errors.js';
import type { AlgorithmMath } from '../limiter/algorithms/algorithm.js';
import { evaluateOps, type StateStore } from '../limiter/algorithms/evaluate.js';
import { chargedOps, refundOps } from '../limiter/algorithms/refund.js';
import type { Backend } from '../limiter/ports.js';
import type { CounterOp, EvaluateOptions, EvaluateResult } from '../limiter/types.js';
import { effectiveNow, validateOps } from '../limiter/ops.js';

/** Options of the in-process backend. */
export interface MemoryBackendOptions {
  /**
   * Wall clock in Unix ms (default `Date.now`). Drives expiry, and the algorithms when a call
   * passes no `now`; inject one in tests to make expiry exact.
   */
  readonly clock?: () => number;
  /**
   * Most counters kept (default 1,000,000; a counter costs a few hundred bytes). When full,
   * the least recently used counter is dropped, which forgets its hits: that key starts fresh
   * and may admit up to one extra window's (or burst's) worth of requests. A cap that the live
   * key set never reaches keeps the backend exact.
   */
  readonly maxKeys?: number;
  /** Period of the sweep that drops expired counters (default 10,000 ms; 0 disables it). */
  readonly sweepIntervalMs?: number;
}

/**
 * A stored counter. Evaluation writes the decoded state object its algorithm's `step` returned
 * (`math` says which algorithm), so the hot path never packs or parses the stored string; the
 * string is made only when asked for (`getRaw`). `setRaw` stores a string as it is (`math`
 * undefined), decoded when an op first reads it, exactly as Redis's value would be.
 */
interface Entry {
  state: unknown;
  math: AlgorithmMath<unknown> | undefined;
  /** The stored string when it came from `setRaw`; undefined for an evaluated state. */
  raw: string | undefined;
  /** Wall-clock ms after which the entry is gone (Redis PX semantics: alive while now <= expiresAt). */
  expiresAt: number;
}

/**
 * Counters in this process's memory, with exactly the semantics of `evaluateOps` (the reference
 * the Lua scripts mirror) and the same stored strings as Redis (kept decoded, encoded on demand),
 * so both pass one conformance suite. For a single replica or development: counters are not shared between processes and are
 * lost on restart.
 *
 * Entries keep Redis's TTL behaviour: an expired entry is invisible (checked lazily on read) and
 * removed by a periodic sweep on an unref'd timer. The Map's insertion order doubles as the LRU
 * order (every read re-inserts the key), so eviction under `maxKeys` is O(1).
 */
export class MemoryBackend implements Backend {
  readonly kind = 'memory';
  private readonly entries = new Map<string, Entry>();
  private readonly clock: () => number;
  private readonly maxKeys: number;
  private readonly sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The wall clock of the evaluation in progress (read by `store`). */
  private wall = 0;
  /** What evaluateOps reads and writes: this backend's entries at `wall`. */
  private readonly store: StateStore = {
    read: (key, math) => this.read(key, math, this.wall),
    write: (key, math, state, ttlMs, keepTtl) => this.write(key, math, state, this.wall + ttlMs, keepTtl),
  };

  constructor(options: MemoryBackendOptions = {}) {
    this.clock = options.clock ?? Date.now;
    this.maxKeys = options.maxKeys ?? 1_000_000;
    if (!Number.isSafeInteger(this.maxKeys) || this.maxKeys < 1) {
      throw new RangeError(`MemoryBackend maxKeys must be a positive integer, got ${options.maxKeys}`);
    }
    const every = options.sweepIntervalMs ?? 10_000;
    if (every > 0) {
      this.sweepTimer = setInterval(() => this.sweep(), every);
      this.sweepTimer.unref();
    }
  }

  evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    try {
      return Promise.resolve(this.evaluateSync(ops, options));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  evaluateSync(ops: readonly CounterOp[], options: EvaluateOptions): EvaluateResult {
    if (this.closed) throw new BackendUnavailableError('memory backend is closed');
    validateOps(ops);
    const wall = this.clock();
    this.wall = wall;
    const now = effectiveNow(options.now, wall);
    const result = evaluateOps(ops, now, options.chargeOnDeny, this.store);
    return options.refundable === true && !result.denied ? this.withRefund(ops, result, now) : result;
  }

  /** `result` with a handle that gives back what it charged (EvaluateOptions.refundable), when it charged anything. */
  private withRefund(ops: readonly CounterOp[], result: EvaluateResult, chargeNow: number): EvaluateResult {
    const charged = chargedOps(ops, result);
    if (charged.length === 0) return result;
    const refund = (): Promise<void> => {
      if (!this.closed) this.giveBack(charged, chargeNow);
      return Promise.resolve();
    };
    return { ...result, refund };
  }

  /** refundOps on the live entries, each rewritten in place (its expiry kept, as lua/refund.lua's SET ... KEEPTTL). */
  private giveBack(ops: readonly CounterOp[], chargeNow: number): void {
    const wall = this.clock();
    const live = (key: string): Entry | undefined => {
      const entry = this.entries.get(key);
      return entry !== undefined && entry.expiresAt >= wall ? entry : undefined;
    };
    const writes = refundOps(ops, chargeNow, (key) => {
      const entry = live(key);
      return entry === undefined ? undefined : rawOf(entry);
    });
    for (const [key, raw] of writes) {
      const entry = live(key);
      if (entry === undefined) continue;
      entry.raw = raw;
      entry.state = undefined;
      entry.math = undefined;
    }
  }

  isReady(): boolean {
    return !this.closed;
  }

  close(): Promise<void> {
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.entries.clear();
    return Promise.resolve();
  }

  /** Drops every expired counter now; returns how many were dropped. */
  sweep(): number {
    const wall = this.clock();
    let dropped = 0;
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt < wall) {
        this.entries.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  /** Number of stored counters, expired ones not yet swept included. */
  get size(): number {
    return this.entries.size;
  }

  /** The stored string of a live counter (tests and debugging; does not touch the LRU order). */
  getRaw(key: string): string | undefined {
    const entry = this.entries.get(key);
    return entry !== undefined && entry.expiresAt >= this.clock() ? rawOf(entry) : undefined;
  }

  /**
   * Milliseconds until a live counter expires on this backend's clock, or -2 when there is none:
   * Redis `PTTL` (tests and debugging; does not touch the LRU order).
   */
  pttl(key: string): number {
    const entry = this.entries.get(key);
    const wall = this.clock();
    return entry !== undefined && entry.expiresAt >= wall ? entry.expiresAt - wall : -2;
  }

  /** Stores a raw string as a counter's state (tests: corrupted or foreign values). */
  setRaw(key: string, value: string, ttlMs = 3_600_000): void {
    this.insert(key, { state: undefined, math: undefined, raw: value, expiresAt: this.clock() + ttlMs });
  }

  /** The decoded state of a live counter for `math`, moving it to the newest end of the LRU order. */
  private read(key: string, math: AlgorithmMath<unknown>, wall: number): unknown {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    if (entry.expiresAt < wall) return undefined;
    this.entries.set(key, entry);
    return entry.math === math ? entry.state : math.decode(rawOf(entry));
  }

  /**
   * Stores an evaluated state. `keepTtl`: keep the entry's expiry (Redis `SET ... KEEPTTL`), as
   * the Lua scripts do. Evaluation writes only keys it has read (every op reads its key first),
   * which made each the newest entry, so a live entry is updated in place.
   */
  private write(key: string, math: AlgorithmMath<unknown>, state: unknown, expiresAt: number, keepTtl: boolean): void {
    const entry = this.entries.get(key);
    if (entry === undefined) {
      this.insert(key, { state, math, raw: undefined, expiresAt });
      return;
    }
    entry.state = state;
    entry.math = math;
    entry.raw = undefined;
    if (!keepTtl) entry.expiresAt = expiresAt;
  }

  /** Puts `entry` at the newest end, dropping the least recently used entries beyond `maxKeys`. */
  private insert(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxKeys) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }
}

/** The stored string of an entry: as `setRaw` gave it, or its state encoded (what Redis would hold). */
function rawOf(entry: Entry): string {
  return entry.raw ?? entry.math!.encode(entry.state);
}
