import { BackendUnavailableError } from '../errors.js';
import type { AlgorithmMath } from '../limiter/algorithms/algorithm.js';
import { evaluateOps, type StateStore } from '../limiter/algorithms/evaluate.js';
import { chargedOps, refundOps } from '../limiter/algorithms/refund.js';
import type { Backend, StoredStates } from '../limiter/ports.js';
import type { CounterOp, EvaluateOptions, EvaluateResult } from '../limiter/types.js';
import { effectiveNow, validateOps } from '../limiter/ops.js';
import { MemoryReservations } from './memory-reservations.js';

/** Options of the in-process backend. */
export interface MemoryBackendOptions {
  /**
   * Wall clock in Unix ms (default `Date.now`). Drives expiry, and the algorithms when a call
   * passes no `now`; inject one in tests to make expiry exact.
   */
  readonly clock?: () => number;
  /**
   * Most counters kept (default 1,000,000; a counter costs up to about 450 bytes of heap). When full,
   * the least recently used counter is dropped, which forgets its hits: that key starts fresh
   * and may admit up to one extra window's (or burst's) worth of requests. A cap that the live
   * key set never reaches keeps the backend exact.
   */
  readonly maxKeys?: number;
  /** Period of the sweep that drops expired counters (default 10,000 ms; 0 disables it). */
  readonly sweepIntervalMs?: number;
}

/**
 * A stored counter, and its place in the LRU list. Evaluation writes the decoded state object its
 * algorithm's `step` returned (`math` says which algorithm), so the hot path never packs or parses
 * the stored string; the string is made only when asked for (`getRaw`). `setRaw` stores a string
 * as it is (`math` undefined), decoded when an op first reads it, exactly as Redis's value would be.
 */
class Entry {
  /** Neighbours in the LRU list: `older` towards the least recently used end, `newer` towards the most recent. */
  older: Entry | undefined = undefined;
  newer: Entry | undefined = undefined;

  constructor(
    /** The counter key (the Map's key too: the list must know it to delete an evicted entry). */
    readonly key: string,
    public state: unknown,
    public math: AlgorithmMath<unknown> | undefined,
    /** The stored string when it came from `setRaw`; undefined for an evaluated state. */
    public raw: string | undefined,
    /** Wall-clock ms after which the entry is gone (Redis PX semantics: alive while now <= expiresAt). */
    public expiresAt: number,
  ) {}
}

/**
 * Counters in this process's memory, with exactly the semantics of `evaluateOps` (the reference
 * the Lua scripts mirror) and the same stored strings as Redis (kept decoded, encoded on demand),
 * so both pass one conformance suite. For a single replica or development: counters are not
 * shared between processes and are lost on restart.
 *
 * Entries keep Redis's TTL behaviour: an expired entry is invisible (checked lazily on read) and
 * removed by a periodic sweep on an unref'd timer.
 *
 * LRU: the entries form a doubly linked list from the least to the most recently used (`oldest`,
 * `newest`), beside the Map that finds them, so a touch (an op reading its key) relinks one entry
 * and an eviction unlinks the list's head: both O(1) whatever happened before. The Map's own
 * insertion order served as the list until it was found to degrade past the cap: V8 leaves a
 * deleted entry as a hole in the Map's table until the next rehash, and `keys().next()` walks
 * over every hole at the front, so with the cap reached each eviction walked past the holes of
 * the evictions before it (100,000 new keys took 0.1-0.2 s below a 100,000 cap and 4.6-8.2 s
 * each beyond it, against 0.1-0.3 s now; test/regressions/memory-eviction-quadratic.test.ts).
 *
 * Memory per counter (heap after a full GC, `node --expose-gc --import tsx
 * benchmarks/memory/counters.ts`: one million live counters with keys built as the limiter
 * builds them, Node 20): fixed window 373 bytes, sliding window 413, token bucket 429; 435 per
 * kept counter once the cap is evicting. That is the entry with its list links (+24 bytes over
 * the Map-order version), the key string, the decoded state object and the Map's slot. Budget
 * `maxKeys` x 450 bytes: about 450 MB of heap at the default 1,000,000.
 */
export class MemoryBackend implements Backend {
  readonly kind = 'memory';
  private readonly entries = new Map<string, Entry>();
  /** Least recently used end of the list (evicted first). */
  private oldest: Entry | undefined = undefined;
  /** Most recently used end of the list. */
  private newest: Entry | undefined = undefined;
  private readonly clock: () => number;
  private readonly maxKeys: number;
  /** Reservation rules' states (./memory-reservations.ts). */
  private readonly reservations: MemoryReservations;
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
    this.reservations = new MemoryReservations(this.maxKeys);
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
    if (options.reservation !== undefined) return this.reservations.run(ops[0]!, options.reservation, now, wall);
    const result = evaluateOps(ops, now, options.chargeOnDeny, this.store);
    return options.refundable === true && !result.denied ? this.withRefund(ops, result, now) : result;
  }

  /** Stored strings of live counters, read without touching the LRU order or writing (explain). */
  readStates(keys: readonly string[], now?: number): Promise<StoredStates> {
    const wall = this.clock();
    return Promise.resolve({ now: effectiveNow(now, wall), values: keys.map((k) => this.getRaw(k) ?? null) });
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
    this.reservations.clear();
    this.oldest = this.newest = undefined;
    return Promise.resolve();
  }

  /** Drops every expired counter now; returns how many were dropped. */
  sweep(): number {
    const wall = this.clock();
    let dropped = this.reservations.sweep(wall);
    for (let entry = this.oldest; entry !== undefined;) {
      const newer = entry.newer;
      if (entry.expiresAt < wall) {
        this.remove(entry);
        dropped++;
      }
      entry = newer;
    }
    return dropped;
  }

  deleteKeys(keys: readonly string[]): Promise<number> {
    let n = 0;
    const wall = this.clock();
    for (const key of keys) {
      if (this.reservations.delete(key)) n++;
      const entry = this.entries.get(key);
      if (entry === undefined) continue;
      if (entry.expiresAt >= wall) n++;
      this.remove(entry);
    }
    return Promise.resolve(n);
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
    this.insert(new Entry(key, undefined, undefined, value, this.clock() + ttlMs));
  }

  /** The decoded state of a live counter for `math`, moving it to the newest end of the LRU order. */
  private read(key: string, math: AlgorithmMath<unknown>, wall: number): unknown {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt < wall) {
      this.remove(entry);
      return undefined;
    }
    if (entry !== this.newest) {
      this.unlink(entry);
      this.append(entry);
    }
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
      this.insert(new Entry(key, state, math, undefined, expiresAt));
      return;
    }
    entry.state = state;
    entry.math = math;
    entry.raw = undefined;
    if (!keepTtl) entry.expiresAt = expiresAt;
  }

  /** Puts `entry` at the newest end (replacing an entry of the same key), dropping the least recently used entries beyond `maxKeys`. */
  private insert(entry: Entry): void {
    const previous = this.entries.get(entry.key);
    if (previous !== undefined) this.unlink(previous);
    this.entries.set(entry.key, entry);
    this.append(entry);
    while (this.entries.size > this.maxKeys && this.oldest !== undefined) this.remove(this.oldest);
  }

  /** Drops `entry` from the Map and the list. */
  private remove(entry: Entry): void {
    this.entries.delete(entry.key);
    this.unlink(entry);
  }

  private unlink(entry: Entry): void {
    const { older, newer } = entry;
    if (older === undefined) this.oldest = newer;
    else older.newer = newer;
    if (newer === undefined) this.newest = older;
    else newer.older = older;
    entry.older = entry.newer = undefined;
  }

  private append(entry: Entry): void {
    const last = this.newest;
    entry.older = last;
    entry.newer = undefined;
    if (last === undefined) this.oldest = entry;
    else last.newer = entry;
    this.newest = entry;
  }
}

/** The stored string of an entry: as `setRaw` gave it, or its state encoded (what Redis would hold). */
function rawOf(entry: Entry): string {
  return entry.raw ?? entry.math!.encode(entry.state);
}
