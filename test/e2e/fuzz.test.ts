import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MemoryBackend } from '../../src/backend/memory.js';
import type { RlsDescriptorInput } from '../../src/client/rls-client.js';
import { UNITS } from '../../src/limiter/types.js';
import { bootService, type BootedService } from '../support/service.js';

/**
 * Bad input through real sockets: random bytes as the gRPC payload, random well-typed but odd
 * requests, and a flood of distinct descriptors against a small memory cap. The service must
 * answer every call with a result or a clear status, stay up, and keep memory bounded.
 */
const CONFIG = `
domain: fuzz
descriptors:
  - key: a
    rate_limit: { unit: second, requests_per_unit: 5 }
    descriptors:
      - key: b
        value: "x*"
        rate_limit: { algorithm: token_bucket, unit: minute, requests_per_unit: 3 }
  - key: s
    rate_limit: { algorithm: sliding_window, unit: hour, requests_per_unit: 2 }
`;

let svc: BootedService;
beforeAll(async () => {
  svc = await bootService({ files: { 'f.yaml': CONFIG }, env: { MEMORY_MAX_KEYS: '500' } });
});
afterAll(async () => {
  await svc?.close();
});

const ALLOWED_CODES = new Set([grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.INTERNAL]);

describe('malformed and random requests', () => {
  it('answers random bytes with a status and stays up', async () => {
    const raw = new grpc.Client(`127.0.0.1:${svc.handle.grpcPort}`, grpc.credentials.createInsecure());
    const call = (payload: Buffer) =>
      new Promise<number>((resolve) => {
        raw.makeUnaryRequest(
          '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit',
          (b: Buffer) => b,
          (b: Buffer) => b,
          payload,
          { deadline: Date.now() + 5000 },
          (err) => resolve(err ? err.code : grpc.status.OK),
        );
      });
    try {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
          const code = await call(Buffer.from(bytes));
          expect(ALLOWED_CODES.has(code), `status ${code}`).toBe(true);
        }),
        { numRuns: 300 },
      );
    } finally {
      raw.close();
    }
    expect(await svc.client.checkHealth()).toBe('SERVING');
  });

  it('answers random typed requests with a decision or INVALID_ARGUMENT', async () => {
    const entry = fc.record({
      key: fc.oneof(fc.constantFrom('a', 'b', 's', ''), fc.string()),
      value: fc.oneof(fc.string(), fc.constantFrom('x1', 'xx', '')),
    });
    const descriptor: fc.Arbitrary<RlsDescriptorInput> = fc.record(
      {
        entries: fc.array(entry, { maxLength: 40 }),
        hitsAddend: fc.oneof(fc.nat(10), fc.constant('18446744073709551615'), fc.constant(2 ** 53)),
        limit: fc.record({ requestsPerUnit: fc.nat(), unit: fc.constantFrom(...UNITS) }),
      },
      { requiredKeys: ['entries'] },
    );
    const request = fc.record({
      domain: fc.oneof(fc.constant('fuzz'), fc.constant(''), fc.string()),
      descriptors: fc.array(descriptor, { maxLength: 70 }),
      hitsAddend: fc.oneof(fc.constant(undefined), fc.nat(5), fc.constant(4294967295)),
    });
    await fc.assert(
      fc.asyncProperty(request, async (req) => {
        try {
          const res = await svc.client.shouldRateLimit(req);
          expect(['OK', 'OVER_LIMIT']).toContain(res.overallCode);
          expect(res.statuses).toHaveLength(req.descriptors.length);
        } catch (err) {
          const e = err as { code?: number; details?: string };
          expect(e.code, String(e.details)).toBe(grpc.status.INVALID_ARGUMENT);
          expect(e.details).toMatch(/\S/);
        }
      }),
      { numRuns: 300 },
    );
    expect(await svc.client.checkHealth()).toBe('SERVING');
  });

  it('keeps the memory backend bounded under a flood of distinct descriptor values', async () => {
    const backend = svc.handle.counterStore as MemoryBackend;
    for (let batch = 0; batch < 20; batch++) {
      await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          svc.client.shouldRateLimit({
            domain: 'fuzz',
            descriptors: [{ entries: [{ key: 'a', value: `ip-${batch}-${i}` }] }, { entries: [{ key: 's', value: `v-${batch}-${i}` }] }],
          }),
        ),
      );
      expect(backend.size).toBeLessThanOrEqual(500);
    }
    expect(backend.size).toBe(500);
  });
});
