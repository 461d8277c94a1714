import { emptyReservationState, reservationKeepMs, reservationStep, type ReservationState } from '../limiter/algorithms/reservation.js';
import type { ReservationCall } from '../limiter/reservation-types.js';
import type { CounterOp, EvaluateResult } from '../limiter/types.js';

/**
 * The memory backend's reservation states (reservation rules only; ordinary counters never come
 * here): reservationStep() on a state kept per counter key, with the lifetime lua/reservation.lua
 * gives its keys (window + TTL after the last write). At most `maxKeys` states: beyond it the
 * least recently written is dropped (its reservations and charge are forgotten, as an evicted
 * ordinary counter's hits are).
 */
export class MemoryReservations {
  private readonly states = new Map<string, { state: ReservationState; expiresAt: number }>();

  constructor(private readonly maxKeys: number) {}

  /** One call at `now` (algorithm clock) and `wall` (expiry clock). */
  run(op: CounterOp, call: ReservationCall, now: number, wall: number): EvaluateResult {
    let entry = this.states.get(op.key);
    if (entry !== undefined && entry.expiresAt < wall) entry = undefined;
    const state = entry?.state ?? emptyReservationState();
    const { outcome, reservation } = reservationStep(state, op.threshold, op.windowMs, call, now);
    const wrote = reservation.outcome === 'taken' || reservation.outcome === 'settled' || reservation.expired > 0 || entry === undefined;
    if (wrote && (entry !== undefined || reservation.outstanding > 0 || reservation.used > 0)) {
      this.states.delete(op.key);
      this.states.set(op.key, { state, expiresAt: wall + reservationKeepMs(op.windowMs, call.ttlMs) });
      while (this.states.size > this.maxKeys) this.states.delete(this.states.keys().next().value!);
    }
    return { denied: outcome.overLimit, outcomes: [outcome], reservation };
  }

  /** Drops expired states; returns how many. */
  sweep(wall: number): number {
    let n = 0;
    for (const [key, e] of this.states) {
      if (e.expiresAt < wall) {
        this.states.delete(key);
        n++;
      }
    }
    return n;
  }

  delete(key: string): boolean {
    return this.states.delete(key);
  }

  clear(): void {
    this.states.clear();
  }
}
