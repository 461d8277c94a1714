import { createHash } from 'node:crypto';

/**
 * Verified tokens remembered by the SHA-256 of their text, so a busy tenant pays one signature
 * verification per token, not one per request.
 *
 * Contract:
 * - only *verified* results are stored (the resolved claim value, never the token); a failed
 *   token is verified again on every request, so garbage tokens cannot evict good entries;
 * - an entry is valid until `expiresAtMs` (the caller passes min(exp, now + cache TTL)); an
 *   expired entry reads as a miss and is dropped;
 * - at most `maxEntries` entries, least recently used dropped first; 0 disables the cache;
 * - time is passed in, never read here (exact tests).
 */
export class TokenCache {
  readonly #max: number;
  readonly #entries = new Map<string, { readonly value: string; readonly expiresAtMs: number }>();

  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The cached claim value, or undefined (miss or expired). A hit becomes most recently used. */
  get(hash: string, nowMs: number): string | undefined {
    const e = this.#entries.get(hash);
    if (e === undefined) return undefined;
    this.#entries.delete(hash);
    if (nowMs >= e.expiresAtMs) return undefined;
    this.#entries.set(hash, e);
    return e.value;
  }

  set(hash: string, value: string, expiresAtMs: number, nowMs: number): void {
    if (this.#max === 0 || expiresAtMs <= nowMs) return;
    this.#entries.delete(hash);
    if (this.#entries.size >= this.#max) {
      // Map iteration order is insertion order, and hits re-insert: the first key is the LRU one.
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(hash, { value, expiresAtMs });
  }

  clear(): void {
    this.#entries.clear();
  }
}

/** The cache key of a token: SHA-256, base64url. The token itself is never stored. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
