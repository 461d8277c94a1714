import type { QuotaAssignment, QuotaStore } from '../../../src/quota/index.js';

/**
 * A small discrete-time model of N Envoys running Envoy's rate_limit_quota filter against one
 * quota store, one step per second: each Envoy reports (allowed, denied, elapsed) every
 * `intervalSec` from its own offset and enforces the token bucket it was assigned. Worst cases
 * on purpose: a new assignment starts with a full bucket, and an Envoy with no assignment (or an
 * expired one) denies, the no-assignment behaviour the overshoot bound assumes.
 */
export interface SimEnvoy {
  readonly id: string;
  /** First report at this second (0 <= offset < intervalSec). */
  readonly offsetSec: number;
  /** Requests offered in second t. */
  readonly demandAt: (t: number) => number;
}

export interface SimInput {
  readonly store: QuotaStore;
  readonly ruleKey: string;
  readonly limit: { readonly requestsPerUnit: number; readonly windowMs: number };
  readonly envoys: readonly SimEnvoy[];
  readonly intervalSec: number;
  /** Unix ms of second 0 (the caller aligns it to a window start, or not). */
  readonly t0Ms: number;
  readonly seconds: number;
  /** RLS traffic in second t on the same counter: resolves with how many of its requests were admitted. */
  readonly rls?: (t: number, nowMs: number) => Promise<number>;
  /** Called after every report with the assignment it got. */
  readonly onAssignment?: (t: number, envoyId: string, a: QuotaAssignment) => void;
}

interface Bucket {
  a: QuotaAssignment;
  from: number;
  tokens: number;
  nextFill: number;
  allowed: number;
  denied: number;
}

/** Runs the model; returns the requests admitted (RLQS Envoys and RLS together) per window index. */
export async function simulate(input: SimInput): Promise<Map<number, number>> {
  const admitted = new Map<number, number>();
  const state = new Map<string, Bucket | { allowed: number; denied: number; a?: undefined }>();
  for (const e of input.envoys) state.set(e.id, { allowed: 0, denied: 0 });
  for (let t = 0; t < input.seconds; t++) {
    const nowMs = input.t0Ms + t * 1000;
    const window = Math.floor(nowMs / input.limit.windowMs);
    let admittedNow = 0;
    for (const e of input.envoys) {
      if (t < e.offsetSec || (t - e.offsetSec) % input.intervalSec !== 0) continue;
      const s = state.get(e.id)!;
      const [a] = await input.store.report(
        [
          {
            ruleKey: input.ruleKey,
            envoyId: e.id,
            allowed: s.allowed,
            denied: s.denied,
            elapsedSec: input.intervalSec,
            limit: input.limit,
          },
        ],
        nowMs,
      );
      input.onAssignment?.(t, e.id, a!);
      state.set(e.id, { a: a!, from: t, tokens: a!.maxTokens, nextFill: t + a!.fillIntervalSec, allowed: 0, denied: 0 });
    }
    if (input.rls !== undefined) admittedNow += await input.rls(t, nowMs);
    for (const e of input.envoys) {
      const s = state.get(e.id)!;
      const demand = e.demandAt(t);
      let take = 0;
      if (s.a !== undefined && !s.a.denyAll && t < s.from + s.a.ttlSec) {
        const b = s as Bucket;
        while (b.nextFill <= t) {
          b.tokens = Math.min(b.a.maxTokens, b.tokens + b.a.tokensPerFill);
          b.nextFill += b.a.fillIntervalSec;
        }
        take = Math.min(demand, b.tokens);
        b.tokens -= take;
      }
      s.allowed += take;
      s.denied += demand - take;
      admittedNow += take;
    }
    admitted.set(window, (admitted.get(window) ?? 0) + admittedNow);
  }
  return admitted;
}
