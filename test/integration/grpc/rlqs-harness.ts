/**
 * A real grpc-js server (the one meshlimit runs, RLS + health + RLQS) on a free loopback port,
 * with an RLQS service over one rule (`api=orders`: 500 per 5 s, fixed window) and a real quota
 * store (memory, or Redis when a store is given), and a raw RLQS client stream that records what
 * it is pushed and how it ended.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach } from 'vitest';
import { MemoryBackend } from '../../../src/backend/memory.js';
import type { DescriptorEntry, FailurePolicy, Rule } from '../../../src/limiter/types.js';
import { MemoryQuotaStore, type QuotaStore } from '../../../src/quota/index.js';
import { HealthState } from '../../../src/server/grpc/health.js';
import { loadClientPackage, RLQS_SERVICE } from '../../../src/server/grpc/protos.js';
import { Assigner } from '../../../src/server/grpc/rlqs/assigner.js';
import type { RlqsStreamSettings } from '../../../src/server/grpc/rlqs/mapping.js';
import { RlqsService } from '../../../src/server/grpc/rlqs/service.js';
import { createGrpcServer, type GrpcServer } from '../../../src/server/grpc/server.js';
import type { TransportLimits } from '../../../src/server/grpc/transport-guard.js';
import { DEFAULT_STRING_LIMITS, type StringLimits } from '../../../src/limiter/string-limits.js';
import { createMetrics, type Metrics } from '../../../src/telemetry/metrics.js';

export const RULE: Rule = {
  ruleKey: 'rlqs.api_orders',
  limits: [
    {
      name: undefined,
      algorithm: 'fixed_window',
      unit: 'second',
      unitMultiplier: 5,
      requestsPerUnit: 500,
      burst: 500,
      windowMs: 5000,
      identity: 'fixed_window/second/5',
      replaces: [],
    },
  ],
  unlimited: false,
  shadowMode: false,
  detailedMetric: false,
};

export const DEFAULT_RLQS: RlqsStreamSettings = {
  bucketKeyOrder: [],
  clientIdHeader: 'x-meshlimit-client-id',
  reassignIntervalMs: 1000,
  abandonAfterSec: 60,
  maxStreams: 100,
  maxBucketsPerStream: 100,
  maxReportsPerSecond: 100,
};

export interface RlqsHarnessOptions {
  readonly settings?: Partial<RlqsStreamSettings>;
  readonly maxBucketEntries?: number;
  readonly strings?: StringLimits;
  readonly unmatched?: 'allow_all' | 'deny_all';
  readonly firstReportTimeoutMs?: number;
  /** The quota store; a memory store over a fresh memory backend when undefined. */
  readonly store?: QuotaStore;
  readonly storeReady?: () => boolean;
  readonly policy?: FailurePolicy;
  /** Runs each round inside a span (as src/rlqs-wiring.ts does when tracing is on). */
  readonly span?: <T>(name: string, attributes: Record<string, string | number>, fn: () => Promise<T>) => Promise<T>;
  /** The gRPC port's transport bounds (GRPC_*); the defaults when undefined. */
  readonly limits?: TransportLimits;
}

export interface RlqsHarness {
  readonly address: string;
  readonly grpc: GrpcServer;
  readonly service: RlqsService;
  readonly metrics: Metrics;
  close(): Promise<void>;
}

/** `api=orders` (alone) matches {@link RULE}; anything else matches nothing. */
function findRule(domain: string, entries: readonly DescriptorEntry[]): Rule | undefined {
  return domain === 'rlqs' && entries.length === 1 && entries[0]!.key === 'api' && entries[0]!.value === 'orders' ? RULE : undefined;
}

export async function startRlqsHarness(o: RlqsHarnessOptions = {}): Promise<RlqsHarness> {
  const store = o.store ?? new MemoryQuotaStore({ backend: new MemoryBackend() });
  const metrics = createMetrics({ collectDefault: false });
  const assigner = new Assigner({
    findRule,
    quota: store,
    keyPrefix: '',
    unmatched: { kind: o.unmatched ?? 'allow_all', ttlSec: 60 },
    storeReady: o.storeReady ?? (() => true),
    policyFor: () => o.policy ?? 'deny',
    replicas: 2,
    fallbackTtlSec: 2,
  });
  const service = new RlqsService({
    settings: { ...DEFAULT_RLQS, ...o.settings },
    limits: { strings: o.strings ?? DEFAULT_STRING_LIMITS, maxBucketEntries: o.maxBucketEntries ?? 32 },
    assigner,
    firstReportTimeoutMs: o.firstReportTimeoutMs ?? 5000,
    metrics: metrics.rlqs,
    span: o.span,
  });
  const server = createGrpcServer({
    limiter: { shouldRateLimit: () => Promise.reject(new Error('unused')) },
    health: new HealthState(true),
    rlqs: service,
    limits: o.limits,
    onTransportAction: metrics.transportAction,
  });
  const port = await server.listen('127.0.0.1', 0);
  return {
    address: `127.0.0.1:${port}`,
    grpc: server,
    service,
    metrics,
    close: async () => {
      await server.close(1000);
      await store.close();
    },
  };
}

/** What a raw RLQS stream was pushed and how it ended. */
export interface RawStream {
  readonly responses: ClientResponse[];
  /** Resolves with the final status. */
  readonly ended: Promise<{ code: number; details: string }>;
  send(msg: object): void;
  /** Resolves once `n` responses have arrived. */
  responsesAtLeast(n: number): Promise<ClientResponse[]>;
  end(): void;
  close(): void;
}

export interface ClientResponse {
  bucketAction: {
    bucketId: { bucket: Record<string, string> };
    quotaAssignmentAction?: {
      assignmentTimeToLive: { seconds: number } | null;
      rateLimitStrategy: {
        blanketRule?: string;
        tokenBucket?: { maxTokens: number; tokensPerFill: { value: number } | null; fillInterval: { seconds: number } | null };
      } | null;
    } | null;
    abandonAction?: object | null;
  }[];
}

export function openRawStream(address: string, envoyId?: string): RawStream {
  const Ctor = grpc.makeGenericClientConstructor(loadClientPackage()[RLQS_SERVICE] as grpc.ServiceDefinition, 'RLQS');
  const client = new Ctor(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    StreamRateLimitQuotas(md: grpc.Metadata): grpc.ClientDuplexStream<object, ClientResponse>;
  };
  const md = new grpc.Metadata();
  if (envoyId !== undefined) md.set('x-meshlimit-client-id', envoyId);
  const stream = client.StreamRateLimitQuotas(md);
  const responses: ClientResponse[] = [];
  const waiters: (() => void)[] = [];
  stream.on('data', (r: ClientResponse) => {
    responses.push(r);
    for (const w of waiters.splice(0)) w();
  });
  const ended = new Promise<{ code: number; details: string }>((resolve) => {
    stream.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details }));
    stream.on('error', () => {});
  });
  return {
    responses,
    ended,
    send: (msg) => stream.write(msg),
    responsesAtLeast: (n) =>
      new Promise((resolve) => {
        const check = (): void => {
          if (responses.length >= n) resolve(responses);
          else waiters.push(check);
        };
        check();
      }),
    end: () => stream.end(),
    close: () => client.close(),
  };
}

/** One usage of `bucket` as Envoy writes it. */
export function usage(bucket: Record<string, string>, allowed = 1, denied = 0, elapsedSec = 1): object {
  return { bucketId: { bucket }, timeElapsed: { seconds: elapsedSec, nanos: 0 }, numRequestsAllowed: allowed, numRequestsDenied: denied };
}

/** A harness per test: `start` it, `open` raw streams on it, `current()` to inspect it; both closed after each test. */
export function harnessPerTest(): {
  start(o?: RlqsHarnessOptions): Promise<RlqsHarness>;
  open(envoyId?: string): RawStream;
  current(): RlqsHarness;
  /** Closes the harness now (a shutdown test); the test's end then has nothing left to close. */
  close(): Promise<void>;
} {
  let h: RlqsHarness | undefined;
  const streams: RawStream[] = [];
  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    await h?.close();
    h = undefined;
  });
  return {
    start: async (o = {}) => (h = await startRlqsHarness(o)),
    open(envoyId) {
      const s = openRawStream(h!.address, envoyId);
      streams.push(s);
      return s;
    },
    current: () => h!,
    async close() {
      const closing = h;
      h = undefined;
      await closing?.close();
    },
  };
}
