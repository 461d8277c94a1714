/**
 * Reservations (meshlimit `reservation` on a descriptor): a call on the request path reserves an
 * estimated cost, the stream-end call settles it with the real cost. Transport-free types shared
 * by config, limiter and backends; the arithmetic is ./algorithms/reservation.ts (the reference)
 * and lua/reservation.lua (its twin).
 */

/** What a reservation rule says (compiled from the descriptor's `reservation:` mapping). */
export interface ReservationSpec {
  /** `tokens` (a budget: settle charges the real cost) or `in_flight` (at most N outstanding, settle charges nothing). */
  readonly mode: 'tokens' | 'in_flight';
  /** Descriptor key whose value is `reserve` or `settle` (default `phase`). */
  readonly phaseKey: string;
  /** Descriptor key whose value correlates a reserve with its settle (default `request_id`). */
  readonly idKey: string;
  /** Fixed estimate reserved per request, or undefined: the reserve call's hits_addend. Always 1 in in_flight mode. */
  readonly estimate: number | undefined;
  /** How long a reservation is held without a settle, ms (<= the limit's window). */
  readonly ttlMs: number;
  /** What an expired reservation costs: nothing, or its estimate (charged when it expires). */
  readonly expiryCost: 'none' | 'estimate';
  /** Most reservations outstanding on one counter; a reserve beyond it is denied (outcome `full`). */
  readonly maxOutstanding: number;
}

/** Longest correlation id accepted (UTF-16 units); Envoy's x-request-id is a 36-character UUID. */
export const MAX_RESERVATION_ID_LENGTH = 128;
/** Upper bound of `max_outstanding` (one script call expires at most this many reservations). */
export const MAX_OUTSTANDING_LIMIT = 100_000;
/**
 * Most a reserve or settle may carry (an estimate or a real cost): Envoy's own cap on hits_addend.
 * With MAX_OUTSTANDING_LIMIT reservations that keeps every sum exact in a double (< 2^53).
 */
export const MAX_RESERVATION_AMOUNT = 1_000_000_000;
/** Default of `max_outstanding`. */
export const DEFAULT_MAX_OUTSTANDING = 10_000;

/** One reserve or settle, as the store runs it on one counter. */
export interface ReservationCall {
  readonly phase: 'reserve' | 'settle';
  /** Correlation id (never part of the counter key). */
  readonly id: string;
  /** reserve: the estimate; settle: the real cost (0 in in_flight mode). */
  readonly amount: number;
  readonly ttlMs: number;
  /** True when an expired reservation is charged its estimate. */
  readonly expiryCharge: boolean;
  readonly maxOutstanding: number;
}

/**
 * What a call did: `taken` (reserved), `denied` (no room), `full` (max_outstanding reached),
 * `duplicate` (the id is already outstanding: denied, so one id cannot admit two requests),
 * `settled`, `unknown` (settle of an id not outstanding: nothing changes, answered OK).
 */
export const RESERVATION_OUTCOMES = ['taken', 'denied', 'full', 'duplicate', 'settled', 'unknown'] as const;
export type ReservationOutcome = (typeof RESERVATION_OUTCOMES)[number];

export interface ReservationResult {
  readonly outcome: ReservationOutcome;
  /** Reservations this call found expired and released (each exactly once). */
  readonly expired: number;
  /** Reservations outstanding on the counter after the call. */
  readonly outstanding: number;
  /** Cost charged in the current window after the call. */
  readonly used: number;
  /** Sum of the outstanding estimates after the call. */
  readonly reserved: number;
}
