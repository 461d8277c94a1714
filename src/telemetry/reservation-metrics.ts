import { Counter, type Registry } from 'prom-client';
import type { ReservationResult } from '../limiter/reservation-types.js';

/**
 * Reservation metrics (README "Reservations"): one counter, `outcome` being what a reservation
 * call did (taken, denied, full, duplicate, settled, unknown, cancelled, degraded) or `expired`
 * (reservations a call found past their TTL and released, each counted once, by the process whose
 * call released it). Outstanding reservations are derived, fleet-wide:
 *
 *   sum(taken) - sum(settled) - sum(cancelled) - sum(expired)
 *
 * (a gauge per process could not see the other processes' calls, and a per-tenant gauge would be
 * a label per tenant). Labels: `domain` and `rule` from the config, never request values; the
 * limiter's rule keys are bounded by the config.
 */
export const RESERVATION_METRIC_NAMES = ['meshlimit_reservations_total'] as const;

export interface ReservationMetrics {
  record(domain: string, ruleKey: string, outcome: string, result: ReservationResult | undefined): void;
}

export function reservationMetrics(registry: Registry): ReservationMetrics {
  const counter = new Counter({
    name: 'meshlimit_reservations_total',
    help: 'Reservation calls by domain, rule and outcome (taken, denied, full, duplicate, settled, unknown, cancelled, degraded), and reservations released by their TTL (outcome expired). Outstanding = taken - settled - cancelled - expired.',
    labelNames: ['domain', 'rule', 'outcome'] as const,
    registers: [registry],
  });
  return {
    record(domain, ruleKey, outcome, result) {
      counter.labels(domain, ruleKey, outcome).inc();
      if (result !== undefined && result.expired > 0) counter.labels(domain, ruleKey, 'expired').inc(result.expired);
    },
  };
}
