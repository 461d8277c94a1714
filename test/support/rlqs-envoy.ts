/**
 * A simulated Envoy running the `envoy.filters.http.rate_limit_quota` filter against an RLQS
 * server. We cannot run Envoy here; this client follows the public protocol
 * (envoy/service/rate_limit_quota/v3/rlqs.proto) and what Envoy's filter does
 * (source/extensions/filters/http/rate_limit_quota/global_client_impl.cc, filter.cc):
 *
 * - the first request matched into a bucket is decided by `no_assignment_behavior`, counted, and
 *   reported at once (a report of that bucket alone, `time_elapsed` 0), which subscribes to it;
 * - every `reportingIntervalSec` (whole seconds) all buckets are reported, with the allowed and
 *   denied counts since the previous report (reset on read) and `time_elapsed` in whole seconds
 *   (truncated, as Envoy's duration_cast<seconds>);
 * - the domain is set on every message; the stream is (re)opened lazily: when it is closed, the
 *   next report tick opens a new one (to the next address, as Envoy's cluster would pick another
 *   endpoint), and the reports of a tick when it cannot are dropped;
 * - a `token_bucket` assignment is enforced locally: fill rate = tokens_per_fill / whole seconds
 *   of fill_interval, capacity max_tokens, refilled continuously; an assignment equal to the active
 *   one (max_tokens, tokens_per_fill, fill_interval nanos: Envoy's own comparison) keeps its
 *   tokens; a different one starts with the old bucket's fill ratio (full for the first one);
 * - `blanket_rule` ALLOW_ALL / DENY_ALL admit or deny everything; `requests_per_time_unit` is
 *   ignored (the bucket keeps what it had, as Envoy logs an error and skips it);
 * - the TTL (whole seconds of `assignment_time_to_live`; 0 expires at once) arms an expiry timer:
 *   on expiry the bucket uses `expired_assignment_behavior` when configured, else it returns to
 *   `no_assignment_behavior`;
 * - `abandon_action` forgets the bucket: its next request starts over as a first request.
 */
import * as grpc from '@grpc/grpc-js';
import { loadClientPackage, RLQS_SERVICE } from '../../src/server/grpc/protos.js';

export type Blanket = 'allow_all' | 'deny_all';

/** An Envoy (not started) on meshlimit's gRPC `port` for `domain`, admitting before its first assignment. */
export function envoyOn(port: number, domain: string, reportingIntervalSec = 60): SimEnvoy {
  return new SimEnvoy({ addresses: [`127.0.0.1:${port}`], domain, reportingIntervalSec, noAssignment: 'allow_all' });
}

/**
 * Descriptor config lines (under `descriptors:`) of one fixed-window rule per value of `key`,
 * the algorithm RLQS divides: `{ fast: 'second 100' }` is `key: api, value: fast` at 100 a second.
 */
export function rlqsRules(key: string, limits: Readonly<Record<string, string>>): string {
  return Object.entries(limits)
    .map(([value, limit]) => {
      const [unit, perUnit] = limit.split(' ');
      return `  - key: ${key}\n    value: ${value}\n    rate_limit: { unit: ${unit}, requests_per_unit: ${perUnit}, algorithm: fixed_window }\n`;
    })
    .join('');
}

export interface SimEnvoyOptions {
  /** `host:port` of the RLQS servers, tried in order (the next one after a stream breaks). */
  readonly addresses: readonly string[];
  readonly domain: string;
  /** Sent as `x-meshlimit-client-id` (initial_metadata in Envoy's grpc_service); omitted when undefined. */
  readonly envoyId?: string | undefined;
  /** `reporting_interval`, whole seconds (Envoy's filter requires it). */
  readonly reportingIntervalSec: number;
  /** `no_assignment_behavior.fallback_rate_limit.blanket_rule`. */
  readonly noAssignment: Blanket;
  /** `expired_assignment_behavior.fallback_rate_limit.blanket_rule`; undefined: back to no-assignment. */
  readonly expired?: Blanket | undefined;
  readonly credentials?: grpc.ChannelCredentials | undefined;
}

interface TokenBucketSpec {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalSec: number;
  readonly fillIntervalNanos: number;
}

type Action = { readonly kind: Blanket } | { readonly kind: 'token_bucket'; readonly spec: TokenBucketSpec; tokens: number; at: number };

interface Bucket {
  readonly id: Record<string, string>;
  allowed: number;
  denied: number;
  lastReportMs: number;
  action: Action | undefined;
  expiry: NodeJS.Timeout | undefined;
}

/** What a bucket has seen, cumulative. */
export interface BucketCounts {
  admitted: number;
  denied: number;
}

interface WireResponse {
  bucketAction: {
    bucketId: { bucket: Record<string, string> } | null;
    quotaAssignmentAction?: {
      assignmentTimeToLive: { seconds: number; nanos: number } | null;
      rateLimitStrategy: {
        blanketRule?: string;
        tokenBucket?: {
          maxTokens: number;
          tokensPerFill: { value: number } | null;
          fillInterval: { seconds: number; nanos: number } | null;
        };
        requestsPerTimeUnit?: unknown;
      } | null;
    } | null;
    abandonAction?: object | null;
  }[];
}

/** The canonical key of a bucket id (key order does not matter, as in the proto). */
export function bucketKey(id: Readonly<Record<string, string>>): string {
  return JSON.stringify(
    Object.keys(id)
      .sort()
      .map((k) => [k, id[k]]),
  );
}

export class SimEnvoy {
  private readonly buckets = new Map<string, Bucket>();
  private readonly totals = new Map<string, BucketCounts>();
  private client: grpc.Client | undefined;
  private stream: grpc.ClientDuplexStream<object, WireResponse> | undefined;
  private addressIndex = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Messages sent and received on RLQS streams (for the benchmark). */
  messagesSent = 0;
  messagesReceived = 0;
  /** Streams opened, and how each ended (status code). */
  streamsOpened = 0;
  readonly streamEnds: { code: number; details: string }[] = [];
  /** Assignments that expired (TTL ran out, or was 0). */
  expiries = 0;
  /** Assignments received with TTL 0 (a server shutting down). */
  zeroTtlAssignments = 0;
  /** The address of the current stream. */
  currentAddress: string | undefined;

  constructor(readonly o: SimEnvoyOptions) {}

  start(): this {
    this.timer = setInterval(() => this.reportAll(), this.o.reportingIntervalSec * 1000);
    return this;
  }

  /** One request matched into `bucket`: admitted or denied as the filter would. */
  request(bucket: Readonly<Record<string, string>>): boolean {
    const key = bucketKey(bucket);
    let b = this.buckets.get(key);
    let allowed: boolean;
    if (b === undefined) {
      allowed = this.o.noAssignment === 'allow_all';
      b = {
        id: { ...bucket },
        allowed: allowed ? 1 : 0,
        denied: allowed ? 0 : 1,
        lastReportMs: performance.now(),
        action: undefined,
        expiry: undefined,
      };
      this.buckets.set(key, b);
      this.send([b]);
    } else {
      allowed = this.decide(b);
      if (allowed) b.allowed++;
      else b.denied++;
    }
    const t = this.totals.get(key) ?? { admitted: 0, denied: 0 };
    if (allowed) t.admitted++;
    else t.denied++;
    this.totals.set(key, t);
    return allowed;
  }

  /** Cumulative counts of a bucket (zero when never hit). */
  counts(bucket: Readonly<Record<string, string>>): BucketCounts {
    return { ...(this.totals.get(bucketKey(bucket)) ?? { admitted: 0, denied: 0 }) };
  }

  /** The bucket's active assignment, as the filter holds it (undefined: none or expired). */
  assignment(bucket: Readonly<Record<string, string>>): Action | undefined {
    return this.buckets.get(bucketKey(bucket))?.action;
  }

  /** The rate (requests/s) of the active token bucket, Infinity for ALLOW_ALL, 0 for DENY_ALL or none. */
  assignedRate(bucket: Readonly<Record<string, string>>): number {
    const a = this.assignment(bucket);
    if (a === undefined) return this.o.noAssignment === 'allow_all' ? Infinity : 0;
    if (a.kind !== 'token_bucket') return a.kind === 'allow_all' ? Infinity : 0;
    return a.spec.tokensPerFill / a.spec.fillIntervalSec;
  }

  hasBucket(bucket: Readonly<Record<string, string>>): boolean {
    return this.buckets.has(bucketKey(bucket));
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    for (const b of this.buckets.values()) clearTimeout(b.expiry);
    this.stream?.end();
    this.stream = undefined;
    this.client?.close();
  }

  private decide(b: Bucket): boolean {
    const a = b.action;
    if (a === undefined) return this.o.noAssignment === 'allow_all';
    if (a.kind !== 'token_bucket') return a.kind === 'allow_all';
    const now = performance.now();
    const rate = a.spec.tokensPerFill / a.spec.fillIntervalSec;
    a.tokens = Math.min(a.spec.maxTokens, a.tokens + ((now - a.at) / 1000) * rate);
    a.at = now;
    if (a.tokens < 1) return false;
    a.tokens -= 1;
    return true;
  }

  private reportAll(): void {
    if (this.closed || this.buckets.size === 0) return;
    this.send([...this.buckets.values()]);
  }

  /** Builds the usage of `buckets` (counts reset, whole seconds elapsed) and sends it, opening a stream when there is none. */
  private send(buckets: readonly Bucket[]): void {
    const now = performance.now();
    const usages = buckets.map((b) => {
      const u = {
        bucketId: { bucket: b.id },
        timeElapsed: { seconds: Math.floor((now - b.lastReportMs) / 1000), nanos: 0 },
        numRequestsAllowed: b.allowed,
        numRequestsDenied: b.denied,
      };
      b.allowed = 0;
      b.denied = 0;
      b.lastReportMs = now;
      return u;
    });
    const stream = this.stream ?? this.open();
    if (stream === undefined) return;
    stream.write({ domain: this.o.domain, bucketQuotaUsages: usages });
    this.messagesSent++;
  }

  private open(): grpc.ClientDuplexStream<object, WireResponse> | undefined {
    if (this.closed) return undefined;
    if (this.client === undefined) {
      const address = this.o.addresses[this.addressIndex % this.o.addresses.length] as string;
      const Ctor = grpc.makeGenericClientConstructor(loadClientPackage()[RLQS_SERVICE] as grpc.ServiceDefinition, 'RLQS');
      this.client = new Ctor(address, this.o.credentials ?? grpc.credentials.createInsecure());
      this.currentAddress = address;
    }
    const md = new grpc.Metadata();
    if (this.o.envoyId !== undefined) md.set('x-meshlimit-client-id', this.o.envoyId);
    const client = this.client as unknown as { StreamRateLimitQuotas(md: grpc.Metadata): grpc.ClientDuplexStream<object, WireResponse> };
    const stream = client.StreamRateLimitQuotas(md);
    this.streamsOpened++;
    this.stream = stream;
    stream.on('data', (r: WireResponse) => {
      this.messagesReceived++;
      this.apply(r);
    });
    const broken = (code: number, details: string): void => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      this.streamEnds.push({ code, details });
      // An error (the server went away) moves to the next address, as Envoy's cluster would.
      if (code !== grpc.status.OK) {
        this.client?.close();
        this.client = undefined;
        this.addressIndex++;
      }
    };
    stream.on('status', (s: grpc.StatusObject) => broken(s.code, s.details));
    stream.on('error', (e: grpc.ServiceError) => broken(e.code ?? grpc.status.UNKNOWN, e.details ?? e.message));
    return stream;
  }

  private apply(r: WireResponse): void {
    for (const a of r.bucketAction) {
      if (a.bucketId === null || Object.keys(a.bucketId.bucket).length === 0) continue;
      const b = this.buckets.get(bucketKey(a.bucketId.bucket));
      if (b === undefined) continue; // not ours (Envoy logs and skips it)
      if (a.abandonAction !== undefined && a.abandonAction !== null) {
        clearTimeout(b.expiry);
        this.buckets.delete(bucketKey(a.bucketId.bucket));
        continue;
      }
      const q = a.quotaAssignmentAction;
      if (q === undefined || q === null) continue;
      const s = q.rateLimitStrategy;
      if (s?.tokenBucket !== undefined) b.action = this.tokenBucket(b.action, s.tokenBucket);
      else if (s?.blanketRule !== undefined) b.action = { kind: s.blanketRule === 'DENY_ALL' ? 'deny_all' : 'allow_all' };
      else continue; // requests_per_time_unit or no strategy: skipped, as Envoy does
      clearTimeout(b.expiry);
      const ttlMs = (q.assignmentTimeToLive?.seconds ?? 0) * 1000;
      if (ttlMs === 0) this.zeroTtlAssignments++;
      b.expiry = setTimeout(() => this.expire(b), ttlMs);
    }
  }

  private tokenBucket(
    previous: Action | undefined,
    tb: NonNullable<
      NonNullable<NonNullable<WireResponse['bucketAction'][number]['quotaAssignmentAction']>['rateLimitStrategy']>['tokenBucket']
    >,
  ): Action {
    const spec: TokenBucketSpec = {
      maxTokens: tb.maxTokens,
      tokensPerFill: tb.tokensPerFill?.value ?? 1,
      fillIntervalSec: Math.max(1, tb.fillInterval?.seconds ?? 0),
      fillIntervalNanos: tb.fillInterval?.nanos ?? 0,
    };
    if (previous?.kind === 'token_bucket') {
      const p = previous.spec;
      if (p.maxTokens === spec.maxTokens && p.tokensPerFill === spec.tokensPerFill && p.fillIntervalNanos === spec.fillIntervalNanos)
        return previous;
      const ratio = p.maxTokens > 0 ? Math.min(1, previous.tokens / p.maxTokens) : 1;
      return { kind: 'token_bucket', spec, tokens: spec.maxTokens * ratio, at: performance.now() };
    }
    return { kind: 'token_bucket', spec, tokens: spec.maxTokens, at: performance.now() };
  }

  private expire(b: Bucket): void {
    b.expiry = undefined;
    this.expiries++;
    b.action = this.o.expired === undefined ? undefined : { kind: this.o.expired };
  }
}
