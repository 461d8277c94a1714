import type { ReservationCall, ReservationOutcome, ReservationResult } from '../reservation-types.js';
import type { CounterOutcome } from '../types.js';

/**
 * Reservations: the reference arithmetic, which lua/reservation.lua mirrors step for step (same
 * order, same integers). The memory backend runs it; property tests check the Lua against it.
 *
 * State of one counter: the epoch-aligned window it charges (`windowStart`, `used`), the sum of
 * the outstanding estimates (`reserved`) and the outstanding reservations by id. A call, at `now`:
 *  1. a new window resets `used` to 0;
 *  2. every reservation with expiresAt <= now is released (removed once, so it is released once);
 *     with `expiryCharge` its estimate is charged to `used`;
 *  3. reserve: an id already outstanding is `duplicate` (denied); `maxOutstanding` outstanding is
 *     `full` (denied); else admitted (`taken`) when used + reserved + estimate <= threshold;
 *     settle: an outstanding id is released and `amount` charged to `used` (never denied, `used`
 *     may pass the threshold); an unknown id (never reserved, settled already, or expired) is
 *     `unknown` and changes nothing.
 * `remaining` = max(0, threshold - used - reserved); `resetMs` = until the window ends.
 */
export interface ReservationState {
  windowStart: number;
  used: number;
  reserved: number;
  /** id -> [estimate, expiresAt]; insertion order is irrelevant to the result. */
  readonly held: Map<string, readonly [number, number]>;
}

export interface ReservationStepResult {
  readonly outcome: CounterOutcome;
  readonly reservation: ReservationResult;
}

export function emptyReservationState(): ReservationState {
  return { windowStart: 0, used: 0, reserved: 0, held: new Map() };
}

/** Runs one call on `state` (mutated in place). `threshold` and `windowMs` are the limit's. */
export function reservationStep(
  state: ReservationState,
  threshold: number,
  windowMs: number,
  call: ReservationCall,
  now: number,
): ReservationStepResult {
  const windowStart = now - (now % windowMs);
  if (state.windowStart !== windowStart) {
    state.windowStart = windowStart;
    state.used = 0;
  }
  let expired = 0;
  for (const [id, [estimate, expiresAt]] of state.held) {
    if (expiresAt > now) continue;
    state.held.delete(id);
    state.reserved -= estimate;
    if (call.expiryCharge) state.used += estimate;
    expired++;
  }
  let outcome: ReservationOutcome;
  if (call.phase === 'reserve') {
    if (state.held.has(call.id)) outcome = 'duplicate';
    else if (state.held.size >= call.maxOutstanding) outcome = 'full';
    else if (state.used + state.reserved + call.amount <= threshold) {
      state.held.set(call.id, [call.amount, now + call.ttlMs]);
      state.reserved += call.amount;
      outcome = 'taken';
    } else outcome = 'denied';
  } else {
    const held = state.held.get(call.id);
    if (held === undefined) outcome = 'unknown';
    else {
      state.held.delete(call.id);
      state.reserved -= held[0];
      state.used += call.amount;
      outcome = 'settled';
    }
  }
  const overLimit = outcome === 'denied' || outcome === 'full' || outcome === 'duplicate';
  return {
    outcome: { overLimit, remaining: Math.max(0, threshold - state.used - state.reserved), resetMs: windowStart + windowMs - now },
    reservation: { outcome, expired, outstanding: state.held.size, used: state.used, reserved: state.reserved },
  };
}

/**
 * How long a store keeps a counter's reservation state after a write: a window (its `used`) plus
 * a TTL (its last reservation), so neither is forgotten while it still counts.
 */
export function reservationKeepMs(windowMs: number, ttlMs: number): number {
  return windowMs + ttlMs;
}

/** The expiry set's key beside a counter key (same `{hash tag}`, so the same cluster slot). */
export function reservationExpiryKey(counterKey: string): string {
  return `${counterKey}:exp`;
}
