import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The RLQS service's metrics (src/server/grpc/rlqs/), part of metrics.ts's declarations. Labels
 * take values from the fixed sets below only: never bucket ids, rule keys or Envoy ids (one
 * series per Envoy would grow with the fleet).
 */

export const RLQS_METRIC_NAMES = [
  'meshlimit_rlqs_streams',
  'meshlimit_rlqs_streams_ended_total',
  'meshlimit_rlqs_buckets',
  'meshlimit_rlqs_assignments_total',
  'meshlimit_rlqs_reported_requests_total',
  'meshlimit_rlqs_reassignment_duration_seconds',
] as const;

/** How an RLQS stream ended (`no_report`: nothing within GRPC_STREAM_TIMEOUT_MS of opening). */
export const RLQS_STREAM_ENDS = ['client_closed', 'invalid_argument', 'resource_exhausted', 'no_report', 'shutdown', 'error'] as const;
export type RlqsStreamEnd = (typeof RLQS_STREAM_ENDS)[number];

/**
 * What one bucket action pushed: a token bucket, a blanket rule (`allow_all`, `deny_all`), an
 * `abandon`, or an `expire` (TTL 0 at shutdown).
 */
export const RLQS_ASSIGNMENT_KINDS = ['token_bucket', 'allow_all', 'deny_all', 'abandon', 'expire'] as const;
export type RlqsAssignmentKind = (typeof RLQS_ASSIGNMENT_KINDS)[number];

/** Where a round of assignments came from: the shared store, or the failure policy while it was down. */
export const RLQS_ROUND_OUTCOMES = ['store', 'failure_policy'] as const;
export type RlqsRoundOutcome = (typeof RLQS_ROUND_OUTCOMES)[number];

export interface RlqsMetrics {
  streamOpened(): void;
  streamEnded(outcome: RlqsStreamEnd): void;
  /** Adds `delta` (positive or negative) to the subscribed-bucket gauge. */
  buckets(delta: number): void;
  assignment(kind: RlqsAssignmentKind): void;
  /** Adds the allowed and denied requests Envoys reported. */
  reported(allowed: number, denied: number): void;
  /** One round (a report or a re-evaluation) from the store call to the pushed answer, in seconds. */
  observeRound(seconds: number, outcome: RlqsRoundOutcome): void;
}

export function rlqsMetrics(registry: Registry): RlqsMetrics {
  const streams = new Gauge({ name: 'meshlimit_rlqs_streams', help: 'RLQS streams open.', registers: [registry] });
  const ended = new Counter({
    name: 'meshlimit_rlqs_streams_ended_total',
    help: `RLQS streams ended, by outcome: ${RLQS_STREAM_ENDS.join(', ')}.`,
    labelNames: ['outcome'],
    registers: [registry],
  });
  const buckets = new Gauge({
    name: 'meshlimit_rlqs_buckets',
    help: 'Buckets subscribed over all open RLQS streams.',
    registers: [registry],
  });
  const assignments = new Counter({
    name: 'meshlimit_rlqs_assignments_total',
    help: `Bucket actions pushed to Envoys, by outcome: ${RLQS_ASSIGNMENT_KINDS.join(', ')}.`,
    labelNames: ['outcome'],
    registers: [registry],
  });
  const reported = new Counter({
    name: 'meshlimit_rlqs_reported_requests_total',
    help: 'Requests Envoys reported in RLQS usage reports, by outcome: allowed, denied.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const rounds = new Histogram({
    name: 'meshlimit_rlqs_reassignment_duration_seconds',
    help: 'Time from a report (or a periodic re-evaluation) to its assignments being pushed, in seconds, by outcome: store, failure_policy.',
    labelNames: ['outcome'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  for (const o of RLQS_STREAM_ENDS) ended.labels(o).inc(0);
  for (const o of RLQS_ASSIGNMENT_KINDS) assignments.labels(o).inc(0);
  for (const o of ['allowed', 'denied']) reported.labels(o).inc(0);
  for (const o of RLQS_ROUND_OUTCOMES) rounds.zero({ outcome: o });
  return {
    streamOpened: () => streams.inc(),
    streamEnded: (outcome) => {
      streams.dec();
      ended.labels(outcome).inc();
    },
    buckets: (delta) => buckets.inc(delta),
    assignment: (kind) => assignments.labels(kind).inc(),
    reported: (allowed, denied) => {
      if (allowed > 0) reported.labels('allowed').inc(allowed);
      if (denied > 0) reported.labels('denied').inc(denied);
    },
    observeRound: (seconds, outcome) => rounds.labels(outcome).observe(seconds),
  };
}
