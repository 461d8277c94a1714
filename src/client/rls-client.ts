/**
 * A typed RLS v3 client over the same proto files as the server: for tests, benchmarks and
 * services that want to ask meshlimit directly instead of going through Envoy.
 *
 * Responses are the decoded messages with every field present (proto3 defaults filled in,
 * absent messages as null), enum values as names and int64 as numbers.
 */
import * as grpc from '@grpc/grpc-js';
import type { Unit } from '../limiter/types.js';
import { HEALTH_SERVICE, loadClientPackage, RLS_SERVICE, serviceDefinition } from '../server/grpc/protos.js';

export type RlsCode = 'UNKNOWN' | 'OK' | 'OVER_LIMIT';
export type RlsUnitName = 'UNKNOWN' | 'SECOND' | 'MINUTE' | 'HOUR' | 'DAY' | 'MONTH' | 'YEAR' | 'WEEK';
export type HealthStatusName = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

export interface RlsDescriptorInput {
  readonly entries: readonly { readonly key: string; readonly value: string }[];
  /** Per-descriptor hits_addend (UInt64Value); omitted = wrapper absent. A string or bigint keeps 64-bit values exact. */
  readonly hitsAddend?: number | string | bigint | undefined;
  /** Per-descriptor limit override. */
  readonly limit?: { readonly requestsPerUnit: number; readonly unit: Unit } | undefined;
}

export interface RlsRequestInput {
  readonly domain: string;
  readonly descriptors: readonly RlsDescriptorInput[];
  /** Request-level hits_addend (uint32); 0 or omitted means 1. */
  readonly hitsAddend?: number | undefined;
}

export interface RlsCallOptions {
  /** Deadline relative to now; defaults to the client's `defaultDeadlineMs`. */
  readonly deadlineMs?: number | undefined;
  readonly metadata?: grpc.Metadata | undefined;
  /** Receives the call's trailing metadata (before the returned promise settles). */
  readonly onTrailers?: ((trailers: grpc.Metadata) => void) | undefined;
}

export interface RlsRateLimit {
  name: string;
  requestsPerUnit: number;
  unit: RlsUnitName;
}

export interface RlsQuota {
  requests: number;
  validUntil: { seconds: number; nanos: number } | null;
  id: string;
}

export interface RlsDescriptorStatus {
  code: RlsCode;
  currentLimit: RlsRateLimit | null;
  limitRemaining: number;
  durationUntilReset: { seconds: number; nanos: number } | null;
  quota: RlsQuota | null;
}

/** A google.protobuf.Value as decoded (oneof members, one of them set). */
export interface RlsStructValue {
  nullValue?: 'NULL_VALUE';
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: { fields: Record<string, RlsStructValue> };
  listValue?: { values: RlsStructValue[] };
}

export interface RlsResponse {
  overallCode: RlsCode;
  statuses: RlsDescriptorStatus[];
  responseHeadersToAdd: { key: string; value: string; rawValue: Buffer }[];
  requestHeadersToAdd: { key: string; value: string; rawValue: Buffer }[];
  rawBody: Buffer;
  dynamicMetadata: { fields: Record<string, RlsStructValue> } | null;
  quota: RlsQuota | null;
}

export interface RlsClientOptions {
  /** Defaults to insecure (plaintext) credentials. */
  readonly credentials?: grpc.ChannelCredentials | undefined;
  readonly channelOptions?: grpc.ChannelOptions | undefined;
  /** Deadline applied when a call gives none; default 5000 ms. */
  readonly defaultDeadlineMs?: number | undefined;
}

export interface RlsClient {
  shouldRateLimit(req: RlsRequestInput, opts?: RlsCallOptions): Promise<RlsResponse>;
  /** grpc.health.v1 Check; rejects with NOT_FOUND for an unknown service. */
  checkHealth(service?: string, opts?: RlsCallOptions): Promise<HealthStatusName>;
  /** The underlying grpc-js client (for raw calls and connectivity state). */
  readonly raw: grpc.Client;
  close(): void;
}

const OVERRIDE_UNIT_NAMES: Readonly<Record<Unit, RlsUnitName>> = Object.freeze({
  second: 'SECOND',
  minute: 'MINUTE',
  hour: 'HOUR',
  day: 'DAY',
  week: 'WEEK',
  month: 'MONTH',
  year: 'YEAR',
});

/** @param address `host:port` (any grpc-js target). */
export function createRlsClient(address: string, opts: RlsClientOptions = {}): RlsClient {
  const pkg = loadClientPackage();
  const rls = serviceDefinition(pkg, RLS_SERVICE)['ShouldRateLimit']!;
  const health = serviceDefinition(pkg, HEALTH_SERVICE)['Check']!;
  const client = new grpc.Client(address, opts.credentials ?? grpc.credentials.createInsecure(), opts.channelOptions);
  const defaultDeadlineMs = opts.defaultDeadlineMs ?? 5000;

  function unary<Req, Res>(method: grpc.MethodDefinition<Req, Res>, arg: Req, call: RlsCallOptions | undefined): Promise<Res> {
    const deadline = Date.now() + (call?.deadlineMs ?? defaultDeadlineMs);
    return new Promise<Res>((resolve, reject) => {
      const c = client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        arg,
        call?.metadata ?? new grpc.Metadata(),
        { deadline },
        (err, value) => (err ? reject(err) : resolve(value!)),
      );
      const onTrailers = call?.onTrailers;
      if (onTrailers !== undefined) c.on('status', (status: grpc.StatusObject) => onTrailers(status.metadata));
    });
  }

  return {
    raw: client,
    shouldRateLimit(req, call) {
      return unary(rls as grpc.MethodDefinition<object, RlsResponse>, toWireRequest(req), call);
    },
    async checkHealth(service = '', call) {
      const res = await unary(health as grpc.MethodDefinition<object, { status: HealthStatusName }>, { service }, call);
      return res.status;
    },
    close() {
      client.close();
    },
  };
}

/** The request object protobufjs `fromObject` encodes (camelCase, enum names). */
export function toWireRequest(req: RlsRequestInput): object {
  return {
    domain: req.domain,
    hitsAddend: req.hitsAddend ?? 0,
    descriptors: req.descriptors.map((d) => ({
      entries: d.entries.map((e) => ({ key: e.key, value: e.value })),
      limit: d.limit === undefined ? null : { requestsPerUnit: d.limit.requestsPerUnit, unit: OVERRIDE_UNIT_NAMES[d.limit.unit] },
      hitsAddend: d.hitsAddend === undefined ? null : { value: typeof d.hitsAddend === 'bigint' ? d.hitsAddend.toString() : d.hitsAddend },
    })),
  };
}
