import { InvalidRequestError } from '../errors.js';
import type { Backend } from './ports.js';
import { MAX_RESERVATION_AMOUNT, MAX_RESERVATION_ID_LENGTH, type ReservationCall, type ReservationResult } from './reservation-types.js';
import type { CounterOp, CounterOutcome, DegradedReason, EvaluateOptions, EvaluateResult, RateLimitCheck } from './types.js';
import type { Planned } from './verdict.js';

/**
 * A request with a reservation rule's descriptor (README "Reservations"): its own path, so an
 * ordinary decision pays nothing for it (the limiter only checks each plan's rule for
 * `reservation`).
 *
 * Order, so that a denied request charges nothing (as every denied request):
 *  1. every reserve and settle call of the request, in parallel, each one lua/reservation.lua
 *     call (or the memory twin) on its own counter;
 *  2. when no reserve was denied, the request's ordinary ops as usual; when one was, the ordinary
 *     ops are only read (hits 0) for their statuses;
 *  3. when the request ends up denied (a reserve, or an ordinary op), the reservations it took
 *     are cancelled (a settle with cost 0), so they do not hold room until their TTL.
 * A settle is never denied. Every call goes through the backend stack, so the breaker and the
 * failure policy apply as for any decision (a degraded answer takes no reservation).
 */

/** Hook for telemetry: one call per reservation call, with what the store said (undefined: degraded). */
export type ReservationObserve = (domain: string, ruleKey: string, outcome: string, result: ReservationResult | undefined) => void;

interface Call {
  readonly op: number;
  readonly ruleKey: string;
  readonly call: ReservationCall;
}

/** True when a plan is a reservation rule's (the one check an ordinary decision pays). */
export function hasReservation(plans: readonly Planned[]): boolean {
  for (let i = 0; i < plans.length; i++) if (plans[i]!.rule?.reservation !== undefined && plans[i]!.limits.length > 0) return true;
  return false;
}

export async function evaluateWithReservations(
  backend: Backend,
  check: RateLimitCheck,
  plans: readonly Planned[],
  ops: readonly CounterOp[],
  base: EvaluateOptions,
  observe: ReservationObserve | undefined,
): Promise<{ outcomes: CounterOutcome[]; degraded: DegradedReason | undefined }> {
  const calls = reservationCalls(check, plans);
  const own = new Set(calls.map((c) => c.op));
  const ordinaryIndex: number[] = [];
  for (let i = 0; i < ops.length; i++) if (!own.has(i)) ordinaryIndex.push(i);
  const outcomes = new Array<CounterOutcome>(ops.length);
  let degraded: DegradedReason | undefined;
  const results = await Promise.allSettled(calls.map((c) => backend.evaluate([ops[c.op]!], { ...base, reservation: c.call })));
  const taken: Call[] = [];
  let denied = false;
  let failure: unknown;
  results.forEach((r, k) => {
    const c = calls[k]!;
    if (r.status === 'rejected') {
      failure ??= r.reason;
      return;
    }
    outcomes[c.op] = r.value.outcomes[0]!;
    degraded ??= r.value.degraded;
    const outcome = r.value.reservation?.outcome ?? 'degraded';
    observe?.(check.domain, c.ruleKey, outcome, r.value.reservation);
    if (outcome === 'taken') taken.push(c);
    if (r.value.denied) denied = true;
  });
  const cancel = (): Promise<void> => cancelAll(backend, ops, taken, base, check.domain, observe);
  if (failure !== undefined) {
    await cancel();
    throw failure;
  }
  if (ordinaryIndex.length > 0) {
    const ordinary = ordinaryIndex.map((i) => (denied ? { ...ops[i]!, hits: 0 } : ops[i]!));
    let r: EvaluateResult;
    try {
      r = await backend.evaluate(ordinary, base);
    } catch (err) {
      await cancel();
      throw err;
    }
    ordinaryIndex.forEach((i, k) => (outcomes[i] = r.outcomes[k]!));
    degraded ??= r.degraded;
    if (r.denied) denied = true;
  }
  if (denied) await cancel();
  return { outcomes, degraded };
}

/** Releases reservations this request took and no longer needs (best effort: a failure leaves them to their TTL). */
async function cancelAll(
  backend: Backend,
  ops: readonly CounterOp[],
  taken: readonly Call[],
  base: EvaluateOptions,
  domain: string,
  observe: ReservationObserve | undefined,
): Promise<void> {
  await Promise.allSettled(
    taken.map(async (c) => {
      const r = await backend.evaluate([ops[c.op]!], { ...base, reservation: { ...c.call, phase: 'settle', amount: 0 } });
      observe?.(domain, c.ruleKey, 'cancelled', r.reservation);
    }),
  );
}

/** Each reservation plan's call, its entries checked (InvalidRequestError naming the descriptor and entry). */
function reservationCalls(check: RateLimitCheck, plans: readonly Planned[]): Call[] {
  const calls: Call[] = [];
  for (let i = 0; i < plans.length; i++) {
    const p = plans[i]!;
    const spec = p.rule?.reservation;
    if (spec === undefined || p.limits.length === 0) continue;
    const d = check.descriptors[i]!;
    const phase = d.entries.find((e) => e.key === spec.phaseKey)?.value;
    const id = d.entries.find((e) => e.key === spec.idKey)?.value;
    if (phase !== 'reserve' && phase !== 'settle')
      throw new InvalidRequestError(
        `descriptors[${i}]: rule ${p.rule!.ruleKey} is a reservation rule; entry '${spec.phaseKey}' must be 'reserve' or 'settle', got ${phase === undefined ? 'none' : `'${phase.slice(0, 40)}'`}`,
      );
    if (id === undefined || id.length === 0 || id.length > MAX_RESERVATION_ID_LENGTH)
      throw new InvalidRequestError(
        `descriptors[${i}]: rule ${p.rule!.ruleKey} needs a correlation entry '${spec.idKey}' of 1 to ${MAX_RESERVATION_ID_LENGTH} characters, got ${id === undefined ? 'none' : `${id.length}`}`,
      );
    const amount =
      spec.mode === 'in_flight'
        ? phase === 'reserve'
          ? 1
          : 0
        : phase === 'reserve'
          ? (spec.estimate ?? p.hits)
          : (d.hitsAddend ?? check.hitsAddend);
    if (amount > MAX_RESERVATION_AMOUNT)
      throw new InvalidRequestError(
        `descriptors[${i}]: rule ${p.rule!.ruleKey} is a reservation rule; its ${phase} carries ${amount} (hits_addend), at most ${MAX_RESERVATION_AMOUNT}`,
      );
    calls.push({
      op: p.firstOp,
      ruleKey: p.rule!.ruleKey,
      call: { phase, id, amount, ttlMs: spec.ttlMs, expiryCharge: spec.expiryCost === 'estimate', maxOutstanding: spec.maxOutstanding },
    });
  }
  return calls;
}
