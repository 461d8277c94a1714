import type { ConfigSnapshot, StoredStates } from './ports.js';
import type { CounterOp, CounterOutcome, Decision } from './types.js';
import type { Planned } from './verdict.js';

/** The types of {@link RateLimiter.explain} (./limiter.ts), split from it for its length. */

/** Reads the stored strings of `ops`' keys, one per op in order, writing nothing (see {@link RateLimiter.explain}). */
export type StateRead = (ops: readonly CounterOp[], now: number | undefined) => Promise<StoredStates>;

/** {@link RateLimiter.explain}'s answer. */
export interface Explanation {
  readonly snapshot: ConfigSnapshot;
  /** False for a domain the config does not have: nothing else is filled in. */
  readonly knownDomain: boolean;
  /** Per request descriptor: its rule, its limits after `replaces`, hits, and its ops from `firstOp`. */
  readonly plans: readonly Planned[];
  readonly ops: readonly CounterOp[];
  /** The store's clock the counters were read at, Unix ms. */
  readonly now: number;
  /** Per op: the counter as it stands (a zero-hit check). */
  readonly current: readonly CounterOutcome[];
  /** Per op: what this request would find. */
  readonly outcomes: readonly CounterOutcome[];
  /** The decision the request would get (from exact counters: the over-limit cache and failure policy are left out). */
  readonly decision: Decision;
}
