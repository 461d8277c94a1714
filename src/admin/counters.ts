import { InternalError } from '../errors.js';
import { isPerSecondOp } from '../backend/per-second.js';
import type { CounterRef, RateLimiter } from '../limiter/limiter.js';
import type { Backend } from '../limiter/ports.js';
import type { RateLimitCheck } from '../limiter/types.js';

/**
 * The counters API's work: a request's counters found by the limiter (from descriptors, never by
 * decoding keys: values are only digests in keys), read with hits 0 (nothing is charged) or
 * deleted, on the counter stores themselves. Not through the breaker or the failure policy: an
 * operator asking about a counter wants Redis's answer or Redis's error, never a degraded guess.
 */
export interface CounterStores {
  readonly limiter: RateLimiter;
  /** The counter store (with REDIS_PERSECOND the main Redis). */
  readonly store: Backend;
  /** REDIS_PERSECOND: the per-second Redis. */
  readonly perSecondStore: Backend | undefined;
  /** Test-only clock (Unix ms) forwarded to the stores, as the limiter forwards it. */
  readonly now?: (() => number | undefined) | undefined;
  /** Forgets this process's cached denials (LOCAL_CACHE_SIZE's over-limit cache) after a reset. */
  readonly forgetDenials: () => void;
}

/** One counter as the API shows it (snake_case, as the `/json` answers). */
export interface CounterView {
  readonly descriptor: number;
  readonly rule: string | null;
  readonly source: CounterRef['source'];
  readonly algorithm: string;
  readonly unit: string;
  readonly unit_multiplier: number;
  readonly window_ms: number;
  readonly requests_per_unit: number;
  readonly burst: number;
  /** Requests (tokens) used in the window: the limit (burst for a token bucket) minus remaining. */
  readonly used: number;
  readonly remaining: number;
  readonly reset_ms: number;
  readonly over_limit: boolean;
  /** The counter's key (values appear only as the hash tag). */
  readonly key: string;
}

function storeOf(s: CounterStores, ref: CounterRef): Backend {
  return s.perSecondStore !== undefined && isPerSecondOp(ref.op) ? s.perSecondStore : s.store;
}

/** Every counter of `check`, read with hits 0 (nothing is charged), one call per store. */
export async function readCounters(s: CounterStores, check: RateLimitCheck): Promise<CounterView[]> {
  const refs = s.limiter.counters(check);
  const views = new Array<CounterView>(refs.length);
  const byStore = new Map<Backend, number[]>();
  refs.forEach((r, i) => {
    const store = storeOf(s, r);
    byStore.set(store, [...(byStore.get(store) ?? []), i]);
  });
  for (const [store, idx] of byStore) {
    const ops = idx.map((i) => refs[i]!.op);
    const result = await store.evaluate(ops, { chargeOnDeny: false, now: s.now?.(), domain: check.domain });
    idx.forEach((refIndex, j) => {
      views[refIndex] = view(refs[refIndex]!, result.outcomes[j]!);
    });
  }
  return views;
}

function view(r: CounterRef, o: { overLimit: boolean; remaining: number; resetMs: number }): CounterView {
  const capacity = r.limit.algorithm === 'token_bucket' ? r.limit.burst : r.limit.requestsPerUnit;
  return {
    descriptor: r.descriptor,
    rule: r.ruleKey ?? null,
    source: r.source,
    algorithm: r.limit.algorithm,
    unit: r.limit.unit,
    unit_multiplier: r.limit.unitMultiplier,
    window_ms: r.limit.windowMs,
    requests_per_unit: r.limit.requestsPerUnit,
    burst: r.limit.burst,
    used: Math.max(0, capacity - o.remaining),
    remaining: o.remaining,
    reset_ms: o.resetMs,
    over_limit: o.overLimit,
    key: r.op.key,
  };
}

/**
 * Deletes every counter of `check`: one DEL per store and descriptor (a descriptor's keys share
 * its hash tag, so one Redis Cluster slot), then forgets this process's cached denials. Other
 * replicas' over-limit caches (LOCAL_CACHE_SIZE) keep a denial until its window ends.
 * @returns the keys and how many of them existed.
 */
export async function deleteCounters(s: CounterStores, check: RateLimitCheck): Promise<{ keys: string[]; deleted: number }> {
  const refs = s.limiter.counters(check);
  const groups = new Map<string, { store: Backend; keys: string[] }>();
  for (const r of refs) {
    const store = storeOf(s, r);
    const id = `${store === s.store ? 'main' : 'per_second'}:${r.descriptor}`;
    const g = groups.get(id) ?? { store, keys: [] };
    if (!g.keys.includes(r.op.key)) g.keys.push(r.op.key);
    groups.set(id, g);
  }
  let deleted = 0;
  for (const { store, keys } of groups.values()) {
    if (store.deleteKeys === undefined) throw new InternalError(`the ${store.kind} store cannot delete counters`);
    deleted += await store.deleteKeys(keys);
  }
  s.forgetDenials();
  return { keys: refs.map((r) => r.op.key), deleted };
}
