import { createHash } from 'node:crypto';
import { LruMap } from '../util/lru.js';

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
  readonly #entries: LruMap<string, { readonly value: string; readonly expiresAtMs: number }>;

  constructor(maxEntries: number) {
    this.#entries = new LruMap(maxEntries);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The cached claim value, or undefined (miss or expired). A hit becomes most recently used. */
  get(hash: string, nowMs: number): string | undefined {
    const e = this.#entries.get(hash);
    if (e === undefined) return undefined;
    if (nowMs >= e.expiresAtMs) {
      this.#entries.delete(hash);
      return undefined;
    }
    return e.value;
  }

  set(hash: string, value: string, expiresAtMs: number, nowMs: number): void {
    if (expiresAtMs <= nowMs) return;
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
