import { LruMap } from '../util/lru.js';

/**
 * A bounded in-process cache of counters known to be over their limit, so a hot key that keeps
 * being denied stops costing a Redis round trip (envoyproxy/ratelimit's LOCAL_CACHE_SIZE_IN_BYTES
 * idea). Off unless LOCAL_CACHE_SIZE > 0.
 *
 * Accuracy: only fixed-window counters are cached, and only when a request of one hit would be
 * over (count >= threshold). Within a window a fixed-window count never goes down (denied
 * requests charge nothing; a cluster refund only returns what a denied request itself charged),
 * so such a counter stays over until its window ends: the cached answer is the answer Redis would
 * give, until the entry expires at the window end. Sliding windows and token buckets recover
 * gradually and are never cached. The cache is cleared on every config reload (a raised limit must
 * apply at once). Trade-off: a cached denial is not visible to Redis, so it is not re-counted (it
 * would not be charged anyway) and the status reports remaining 0 without asking.
 */
export class OverLimitCache {
  readonly #entries: LruMap<string, number>;

  /** @param capacity most keys kept; the least recently added or read entry is dropped when full. 0 disables the cache. */
  constructor(private readonly capacity: number) {
    this.#entries = new LruMap(capacity);
  }

  get enabled(): boolean {
    return this.capacity > 0;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Milliseconds until the cached over-limit state of `key` ends, or 0 when not cached. */
  remainingMs(key: string, now: number): number {
    const until = this.#entries.peek(key);
    if (until === undefined) return 0;
    if (until <= now) {
      this.#entries.delete(key);
      return 0;
    }
    return until - now;
  }

  /** Remembers that `key` is over its limit until `now + resetMs`. */
  add(key: string, now: number, resetMs: number): void {
    if (this.capacity === 0 || resetMs <= 0) return;
    this.#entries.set(key, now + resetMs);
  }

  clear(): void {
    this.#entries.clear();
  }
}
