import { headerName, integer, InvalidValue, oneOf, parseBool, setting } from './spec.js';

/**
 * The RLQS service's settings (RLQS_*), rows of the settings table (./table.ts spreads them in
 * after the gRPC rows). What each does: src/server/grpc/rlqs/ and the README's "RLQS" section.
 * Every bound here is enforced per stream or per process with RESOURCE_EXHAUSTED or
 * INVALID_ARGUMENT naming the setting.
 */

/** What a bucket whose descriptor matches no rule is assigned. */
export const RLQS_UNMATCHED_ACTIONS = ['allow_all', 'deny_all'] as const;
export type RlqsUnmatchedAction = (typeof RLQS_UNMATCHED_ACTIONS)[number];

/** RLQS_BUCKET_KEY_ORDER: comma-separated bucket keys, each once. */
function keyOrder(raw: string): readonly string[] {
  const keys = raw
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k)) throw new InvalidValue(`lists ${JSON.stringify(k)} twice; name each bucket key once`);
    seen.add(k);
  }
  return Object.freeze(keys);
}

export const RLQS_DEFS = {
  RLQS_ENABLED: setting({
    group: 'rlqs',
    default: 'true',
    parse: parseBool,
    description:
      'Serve `envoy.service.rate_limit_quota.v3.RateLimitQuotaService` (RLQS) on the gRPC port beside RLS, over the same descriptor config and the same store. `false`: the method is not registered (UNIMPLEMENTED).',
  }),
  RLQS_UNMATCHED_BUCKET: setting({
    group: 'rlqs',
    default: 'allow_all',
    parse: oneOf<RlqsUnmatchedAction>(RLQS_UNMATCHED_ACTIONS),
    description:
      'The assignment of a bucket whose descriptor matches no rule of the domain (or whose domain is unknown): `allow_all` (as RLS answers OK for such a descriptor) or `deny_all`. Sent as a blanket rule with `RLQS_UNMATCHED_TTL_S`.',
  }),
  RLQS_UNMATCHED_TTL_S: setting({
    group: 'rlqs',
    default: '60',
    parse: integer(1, 86_400),
    description:
      'Whole seconds the blanket assignment of an unmatched bucket lives (re-sent at each report, so a config reload that adds a rule takes effect at the next report).',
  }),
  RLQS_BUCKET_KEY_ORDER: setting({
    group: 'rlqs',
    default: '',
    parse: keyOrder,
    description:
      'How a bucket id (a map, unordered) becomes a descriptor: the keys listed here first, in this order, then the other keys sorted by code point. Empty: all keys sorted. E.g. `tenant,path` makes `{path: /a, tenant: t1}` the descriptor `tenant=t1, path=/a`.',
  }),
  RLQS_CLIENT_ID_HEADER: setting({
    group: 'rlqs',
    default: 'x-meshlimit-client-id',
    parse: (raw: string) => headerName(raw).toLowerCase(),
    description:
      "gRPC metadata naming the Envoy on an RLQS stream (set it with the rlqs_server `grpc_service.initial_metadata`): an Envoy that reconnects, to this process or another, resumes its buckets' demand and shares. Without it each stream is a new Envoy and the old one's share is reclaimed by the store after 4 reporting intervals without a report.",
  }),
  RLQS_REASSIGN_INTERVAL_MS: setting({
    group: 'rlqs',
    default: '1000',
    parse: integer(100, 600_000),
    description:
      "Milliseconds between re-evaluations of every subscribed bucket without waiting for its Envoy's report: assignments whose rate changed are pushed, so an idle Envoy's share shrinks and a busy one's grows while neither reports. Keep it at most Envoy's `reporting_interval`.",
  }),
  RLQS_ABANDON_AFTER_S: setting({
    group: 'rlqs',
    default: '60',
    parse: integer(1, 86_400),
    description:
      'Whole seconds a bucket may report no request (allowed + denied = 0) before it is abandoned (`abandon_action`): its share is returned to the other Envoys and Envoy forgets the bucket until its next request. A closed stream\'s Envoy is not abandoned: the store drops it from the division after 4 reporting intervals without a report (README "Allocation rule and overshoot bound"), and keeps it if it reconnects before.',
  }),
  RLQS_MAX_STREAMS: setting({
    group: 'rlqs',
    default: '10000',
    parse: integer(1, 1_000_000),
    description:
      'RLQS streams open at once in this process; one more is closed with RESOURCE_EXHAUSTED. Per connection, `GRPC_MAX_CONCURRENT_STREAMS` applies as for any call.',
  }),
  RLQS_MAX_BUCKETS_PER_STREAM: setting({
    group: 'rlqs',
    default: '1000',
    parse: integer(1, 1_000_000),
    description: 'Buckets one RLQS stream may subscribe to; a report naming one more closes the stream with RESOURCE_EXHAUSTED.',
  }),
  RLQS_MAX_BUCKET_ENTRIES: setting({
    group: 'rlqs',
    default: '32',
    parse: integer(1, 1024),
    description:
      'Entries (key/value pairs) one bucket id may have, as a descriptor may have at most 32; more is INVALID_ARGUMENT. Key and value sizes are bounded by the RLS limits (256 bytes, `MAX_DESCRIPTOR_VALUE_BYTES`).',
  }),
  RLQS_MAX_REPORTS_PER_SECOND: setting({
    group: 'rlqs',
    default: '100',
    parse: integer(1, 1_000_000),
    description:
      'Report messages one RLQS stream may send per second (Envoy sends one per reporting interval plus one per newly hit bucket); past it the stream is closed with RESOURCE_EXHAUSTED.',
  }),
};

/** The parsed RLQS_* group (Settings['rlqs']). */
export interface RlqsSettings {
  readonly enabled: boolean;
  readonly unmatched: RlqsUnmatchedAction;
  readonly unmatchedTtlSec: number;
  /** Bucket keys that come first, in this order; the others follow sorted. */
  readonly bucketKeyOrder: readonly string[];
  /** Lower-case metadata key naming the Envoy. */
  readonly clientIdHeader: string;
  readonly reassignIntervalMs: number;
  readonly abandonAfterSec: number;
  readonly maxStreams: number;
  readonly maxBucketsPerStream: number;
  readonly maxBucketEntries: number;
  readonly maxReportsPerSecond: number;
}
