import { isMeshlimitError } from '../errors.js';
import type { Backend } from '../limiter/ports.js';
import type { CounterOp, CounterOutcome, EvaluateOptions, EvaluateResult } from '../limiter/types.js';

/**
 * REDIS_PERSECOND (envoyproxy/ratelimit's name and meaning): the counters of per-second limits
 * live in a Redis of their own, every other counter in the main one. Per-second counters are
 * the busiest and the shortest-lived; a separate Redis takes their load off the main one and can
 * run without persistence, since losing a second's worth of counts costs little.
 *
 * Which ops are per-second: {@link isPerSecondOp}, a window of exactly one second (`unit: second`
 * with no `unit_multiplier`, or with 1), whatever the algorithm. This is upstream's rule (its
 * `unit == SECOND`) for every config upstream can express. meshlimit's custom windows
 * (`unit: second, unit_multiplier: 30`) are not per-second limits: they go to the main Redis,
 * like a minute would (a 3,600-second "second" window is an hour, and should survive like one).
 *
 * One request, two stores. Each store evaluates its share of a request atomically, as ever; a
 * request whose ops all fall in one store (the common case) is sent there as it is, so it stays
 * exact and costs one round trip. A request spanning both is evaluated on both at once (one round
 * trip each, in parallel), asking each for a refund handle (EvaluateOptions.refundable); when
 * one store denies it, or fails, the share the other store charged is given back (lua/refund.lua)
 * before the answer, exactly as the Redis Cluster backend does for a request spanning hash slots.
 * So "a denied request consumes nothing" holds across the two stores, with the cluster's
 * trade-offs (the price of not holding a lock across two servers):
 * - between the charge and the refund, other requests see the charge: the service can briefly
 *   under-admit, never over-admit (a refund never gives back more than the counter still holds);
 * - a refund that fails (the store went away meanwhile) leaves the charge: under-admission until
 *   that window or bucket moves on; the store's `onRefundError` reports it;
 * - a spanning request that is denied costs a second round trip (the refund) on the store that
 *   admitted it;
 * - a store whose answer came from its failure policy (`allow` or `local`, marked degraded) has
 *   no refund handle: nothing shared was charged there (`allow`), or only this process's local
 *   fallback counters, which are not given back (`local`);
 * - a call that timed out may still run later on its Redis, as on one store: its charge then
 *   stays although the request was answered UNAVAILABLE.
 * With CHARGE_ON_DENY=true nothing is ever refunded (every counter is charged, as upstream).
 *
 * Failures: each store sits in its own decorator stack (its own breaker, admission bound and
 * failure policy, src/backend/stack.ts), so a dead per-second Redis opens only its own breaker:
 * under `allow` or `local` the per-second limits are answered degraded while every other limit
 * is still enforced exactly from the main Redis. Under `deny` a request that needs the failed
 * store is answered UNAVAILABLE (after the other store's share is refunded); requests that do not
 * need it are unaffected.
 */

/** The per-second rule: a window of exactly one second (upstream's `unit == SECOND`). */
export function isPerSecondWindow(windowMs: number): boolean {
  return windowMs === 1_000;
}

export function isPerSecondOp(op: CounterOp): boolean {
  return isPerSecondWindow(op.windowMs);
}

export interface PerSecondSplitOptions {
  /**
   * Which ops go to the per-second store (default {@link isPerSecondOp}). Every op on one key
   * follows that key's first op, so ops that must see each other always share a store.
   */
  readonly routesToPerSecond?: (op: CounterOp) => boolean;
}

/** A request's ops split between the stores: for each, the ops and their positions in the request. */
interface Split {
  readonly main: CounterOp[];
  readonly mainAt: number[];
  readonly perSecond: CounterOp[];
  readonly perSecondAt: number[];
}

export class PerSecondSplitBackend implements Backend {
  readonly kind: string;
  private readonly routes: (op: CounterOp) => boolean;

  /** `main` and `perSecond` are whole stacks (store, breaker, admission, policy); both are owned (closed by close()). */
  constructor(
    readonly main: Backend,
    readonly perSecond: Backend,
    options: PerSecondSplitOptions = {},
  ) {
    this.kind = main.kind;
    this.routes = options.routesToPerSecond ?? isPerSecondOp;
  }

  evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    const split = this.split(ops);
    if (split.perSecond.length === 0) return this.main.evaluate(ops, options);
    if (split.main.length === 0) return this.perSecond.evaluate(ops, options);
    return this.evaluateBoth(ops.length, split, options);
  }

  private split(ops: readonly CounterOp[]): Split {
    const split: Split = { main: [], mainAt: [], perSecond: [], perSecondAt: [] };
    const byKey = ops.length > 1 ? new Map<string, boolean>() : undefined;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      let toPerSecond = byKey?.get(op.key);
      if (toPerSecond === undefined) {
        toPerSecond = this.routes(op);
        byKey?.set(op.key, toPerSecond);
      }
      (toPerSecond ? split.perSecond : split.main).push(op);
      (toPerSecond ? split.perSecondAt : split.mainAt).push(i);
    }
    return split;
  }

  /** Both shares at once; the admitted share refunded when the other denies or fails (see above). */
  private async evaluateBoth(count: number, split: Split, options: EvaluateOptions): Promise<EvaluateResult> {
    const refundOnDeny = !options.chargeOnDeny;
    const shareOptions: EvaluateOptions = refundOnDeny ? { ...options, refundable: true } : options;
    const settled = await Promise.allSettled([
      this.main.evaluate(split.main, shareOptions),
      this.perSecond.evaluate(split.perSecond, shareOptions),
    ]);
    const outcomes = new Array<CounterOutcome>(count);
    const admitted: EvaluateResult[] = [];
    let denied = false;
    let degraded: EvaluateResult['degraded'];
    let failure: unknown;
    settled.forEach((s, side) => {
      if (s.status === 'rejected') {
        failure = worse(failure, s.reason);
        return;
      }
      const at = side === 0 ? split.mainAt : split.perSecondAt;
      at.forEach((index, k) => (outcomes[index] = s.value.outcomes[k]!));
      if (s.value.denied) denied = true;
      else admitted.push(s.value);
      degraded ??= s.value.degraded;
    });
    if ((denied || failure !== undefined) && refundOnDeny) await Promise.all(admitted.map((r) => r.refund?.()));
    if (failure !== undefined) throw failure;
    const refunds = admitted.flatMap((r) => (r.refund === undefined ? [] : [r.refund]));
    const refund = options.refundable === true && !denied && refunds.length > 0 ? () => giveBackAll(refunds) : undefined;
    return { denied, outcomes, ...(degraded === undefined ? {} : { degraded }), ...(refund === undefined ? {} : { refund }) };
  }

  /** Ready when both stacks are (each follows its own failure policy's readiness rule). */
  isReady(): boolean {
    return this.main.isReady() && this.perSecond.isReady();
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled([this.main.close(), this.perSecond.close()]);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }
}

/** The error to report of two: a non-transient one (a bug) wins over a transient one, so that it surfaces. */
function worse(kept: unknown, next: unknown): unknown {
  if (kept === undefined) return next;
  const transient = (e: unknown): boolean => isMeshlimitError(e) && e.transient;
  return transient(kept) && !transient(next) ? next : kept;
}

async function giveBackAll(refunds: readonly (() => Promise<void>)[]): Promise<void> {
  await Promise.all(refunds.map((r) => r()));
}
