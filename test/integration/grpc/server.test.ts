/**
 * ShouldRateLimit over real sockets: our typed client, and a plain grpc-js client built from the
 * proto files with .proto (snake_case) field names, against a server with a fake limiter.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRlsClient, type RlsClient } from '../../../src/client/rls-client.js';
import { BackendUnavailableError } from '../../../src/errors.js';
import type { Decision } from '../../../src/limiter/types.js';
import { defaultBehaviour, startHarness, type Harness } from './harness.js';

const PROTO_DIR = fileURLToPath(new URL('../../../proto/', import.meta.url));

const HEADERS = { limit: 'RateLimit-Limit', remaining: 'RateLimit-Remaining', reset: 'RateLimit-Reset' };

const DECISION: Decision = {
  code: 'OVER_LIMIT',
  statuses: [
    {
      code: 'OVER_LIMIT',
      limit: { requestsPerUnit: 10, unit: 'minute', unitMultiplier: 1, name: 'per-company' },
      remaining: 0,
      resetMs: 4_200,
      shadowed: false,
      unlimited: false,
    },
    { code: 'OK', remaining: 0, resetMs: 0, shadowed: false, unlimited: true },
    {
      code: 'OK',
      limit: { requestsPerUnit: 1000, unit: 'day', unitMultiplier: 1, name: undefined },
      remaining: 998,
      resetMs: 3_600_000,
      shadowed: false,
      unlimited: false,
    },
  ],
  degraded: 'circuit_open',
};

interface RawServiceError extends Error {
  code: number;
  details: string;
  metadata: grpc.Metadata;
}

/** A grpc-js client made from the proto files alone (keepCase: true), no meshlimit code. */
function rawRlsClient(address: string): grpc.Client & Record<string, (...args: unknown[]) => unknown> {
  const def = protoLoader.loadSync('envoy/service/ratelimit/v3/rls.proto', {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    arrays: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    envoy: { service: { ratelimit: { v3: { RateLimitService: grpc.ServiceClientConstructor } } } };
  };
  const Ctor = pkg.envoy.service.ratelimit.v3.RateLimitService;
  return new Ctor(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
}

function rawCall(client: ReturnType<typeof rawRlsClient>, req: object, deadlineMs = 5000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    client['ShouldRateLimit']!(req, { deadline: Date.now() + deadlineMs }, (err: RawServiceError | null, res: Record<string, unknown>) =>
      err ? reject(err) : resolve(res),
    );
  });
}

async function rejection(p: Promise<unknown>): Promise<RawServiceError> {
  try {
    await p;
  } catch (err) {
    return err as RawServiceError;
  }
  throw new Error('expected the call to fail');
}

describe('ShouldRateLimit over gRPC', () => {
  let h: Harness;
  let client: RlsClient;
  let raw: ReturnType<typeof rawRlsClient>;

  beforeAll(async () => {
    h = await startHarness({ headers: HEADERS });
    client = createRlsClient(h.address);
    raw = rawRlsClient(h.address);
  });
  afterEach(() => {
    h.behave(defaultBehaviour);
    h.calls.length = 0;
  });
  afterAll(async () => {
    client.close();
    raw.close();
    await h.close();
  });

  it('round-trips every request and response field through the typed client', async () => {
    h.behave(() => Promise.resolve(DECISION));
    const res = await client.shouldRateLimit({
      domain: 'edge',
      hitsAddend: 2,
      descriptors: [
        { entries: [{ key: 'company', value: 'acme' }], limit: { requestsPerUnit: 10, unit: 'minute' }, hitsAddend: 3 },
        { entries: [{ key: 'path', value: '/health' }], hitsAddend: 0 },
        {
          entries: [
            { key: 'company', value: 'acme' },
            { key: 'day', value: 'x' },
          ],
          limit: { requestsPerUnit: 1, unit: 'week' },
        },
      ],
    });
    expect(h.calls.map((c) => c.check)).toEqual([
      {
        domain: 'edge',
        hitsAddend: 2,
        descriptors: [
          { entries: [{ key: 'company', value: 'acme' }], limitOverride: { requestsPerUnit: 10, unit: 'minute' }, hitsAddend: 3 },
          { entries: [{ key: 'path', value: '/health' }], limitOverride: undefined, hitsAddend: 0 },
          {
            entries: [
              { key: 'company', value: 'acme' },
              { key: 'day', value: 'x' },
            ],
            limitOverride: { requestsPerUnit: 1, unit: 'week' },
            hitsAddend: undefined,
          },
        ],
      },
    ]);
    expect(h.calls[0]!.check.descriptors[2]).not.toHaveProperty('hitsAddend', 0);
    const empty = Buffer.alloc(0);
    expect(res).toEqual({
      overallCode: 'OVER_LIMIT',
      statuses: [
        {
          code: 'OVER_LIMIT',
          currentLimit: { name: 'per-company', requestsPerUnit: 10, unit: 'MINUTE' },
          limitRemaining: 0,
          durationUntilReset: { seconds: 5, nanos: 0 },
          quota: null,
        },
        { code: 'OK', currentLimit: null, limitRemaining: 4_294_967_295, durationUntilReset: null, quota: null },
        {
          code: 'OK',
          currentLimit: { name: '', requestsPerUnit: 1000, unit: 'DAY' },
          limitRemaining: 998,
          durationUntilReset: { seconds: 3600, nanos: 0 },
          quota: null,
        },
      ],
      responseHeadersToAdd: [
        { key: 'RateLimit-Limit', value: '10', rawValue: empty },
        { key: 'RateLimit-Remaining', value: '0', rawValue: empty },
        { key: 'RateLimit-Reset', value: '5', rawValue: empty },
      ],
      requestHeadersToAdd: [],
      rawBody: empty,
      dynamicMetadata: { fields: { 'meshlimit.degraded': { stringValue: 'circuit_open' } } },
      quota: null,
    });
  });

  it('speaks the .proto (snake_case) field names to a plain grpc-js client', async () => {
    h.behave(() => Promise.resolve(DECISION));
    const res = await rawCall(raw, {
      domain: 'edge',
      hits_addend: 4,
      descriptors: [
        { entries: [{ key: 'a', value: '1' }], hits_addend: { value: '9007199254740991' } },
        { entries: [{ key: 'b', value: '2' }], limit: { requests_per_unit: 7, unit: 'YEAR' } },
        { entries: [{ key: 'c', value: '3' }] },
      ],
    });
    expect(h.calls[0]!.check).toEqual({
      domain: 'edge',
      hitsAddend: 4,
      descriptors: [
        { entries: [{ key: 'a', value: '1' }], limitOverride: undefined, hitsAddend: Number.MAX_SAFE_INTEGER },
        { entries: [{ key: 'b', value: '2' }], limitOverride: { requestsPerUnit: 7, unit: 'year' }, hitsAddend: undefined },
        { entries: [{ key: 'c', value: '3' }], limitOverride: undefined, hitsAddend: undefined },
      ],
    });
    // defaults: false on this client: what is absent was not on the wire.
    expect(res).toEqual({
      overall_code: 'OVER_LIMIT',
      statuses: [
        {
          code: 'OVER_LIMIT',
          current_limit: { name: 'per-company', requests_per_unit: 10, unit: 'MINUTE' },
          limit_remaining: 0,
          duration_until_reset: { seconds: '5' },
        },
        { code: 'OK', limit_remaining: 4_294_967_295 },
        {
          code: 'OK',
          current_limit: { name: '', requests_per_unit: 1000, unit: 'DAY' },
          limit_remaining: 998,
          duration_until_reset: { seconds: '3600' },
        },
      ],
      response_headers_to_add: [
        { key: 'RateLimit-Limit', value: '10' },
        { key: 'RateLimit-Remaining', value: '0' },
        { key: 'RateLimit-Reset', value: '5' },
      ],
      request_headers_to_add: [],
      // protobufjs bundles google/protobuf/struct.proto with camelCase names whatever keepCase says.
      dynamic_metadata: { fields: { 'meshlimit.degraded': { stringValue: 'circuit_open' } } },
    });
  });

  it('answers INVALID_ARGUMENT for an empty domain and for no descriptors (limiter validation)', async () => {
    const noDomain = await rejection(client.shouldRateLimit({ domain: '', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }] }));
    expect(noDomain.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(noDomain.details).toBe('rate limit domain must not be empty');
    expect(noDomain.metadata.get('meshlimit-error-code')).toEqual(['ML_ERR_INVALID_REQUEST']);

    const noDescriptors = await rejection(rawCall(raw, { domain: 'edge' }));
    expect(noDescriptors.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(noDescriptors.details).toBe('rate limit descriptor list must not be empty');
  });

  it('answers INVALID_ARGUMENT for wire values the mapping rejects, before the limiter runs', async () => {
    const unknownUnit = await rejection(
      rawCall(raw, {
        domain: 'edge',
        descriptors: [{ entries: [{ key: 'k', value: 'v' }], limit: { requests_per_unit: 5, unit: 'UNKNOWN' } }],
      }),
    );
    expect(unknownUnit.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(unknownUnit.details).toBe('descriptors[0].limit.unit must be a known RateLimitUnit, got 0');

    const hugeHits = await rejection(
      client.shouldRateLimit({
        domain: 'edge',
        descriptors: [{ entries: [{ key: 'k', value: 'v' }], hitsAddend: 18_446_744_073_709_551_615n }],
      }),
    );
    expect(hugeHits.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(hugeHits.details).toBe('descriptors[0].hits_addend must be an integer between 0 and 9007199254740991, got 18446744073709551615');
    expect(h.calls).toHaveLength(0);
  });

  it('answers UNAVAILABLE when the backend is unavailable, so failure_mode_deny decides', async () => {
    h.behave(() => Promise.reject(new BackendUnavailableError('redis: connection refused (127.0.0.1:1)')));
    const err = await rejection(client.shouldRateLimit({ domain: 'edge', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }] }));
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.details).toBe('redis: connection refused (127.0.0.1:1)');
    expect(err.metadata.get('meshlimit-error-code')).toEqual(['ML_ERR_BACKEND_UNAVAILABLE']);
  });

  it('answers INTERNAL without details for an unexpected error', async () => {
    h.behave(() => Promise.reject(new Error('secret internal state')));
    const err = await rejection(client.shouldRateLimit({ domain: 'edge', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }] }));
    expect(err.code).toBe(grpc.status.INTERNAL);
    expect(err.details).toBe('internal error');
  });

  it('passes the client deadline down and answers DEADLINE_EXCEEDED when it passes', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    h.behave(async () => {
      await released;
      return DECISION;
    });
    const before = Date.now();
    const err = await rejection(
      client.shouldRateLimit({ domain: 'edge', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }] }, { deadlineMs: 150 }),
    );
    release();
    expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(h.calls).toHaveLength(1);
    // The server's deadline is its receive time plus the grpc-timeout the client sent (<= 150 ms):
    // a finite instant after the call started and within the client's budget plus transit.
    const deadline = h.calls[0]!.deadline!;
    expect(deadline).toBeGreaterThan(before);
    expect(deadline).toBeLessThan(before + 150 + 1000);
  });
});
