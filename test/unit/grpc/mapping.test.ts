import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../../src/errors.js';
import type { Decision, DescriptorStatus, Unit } from '../../../src/limiter/types.js';
import {
  decisionToResponse,
  DEGRADED_METADATA_KEY,
  MAX_UINT32,
  requestToCheck,
  resetDuration,
  statusToWire,
  WireCode,
  type WireDescriptor,
  type WireRateLimitRequest,
} from '../../../src/server/grpc/mapping.js';
import { decodeRateLimitRequest } from '../../../src/server/grpc/codec-decode.js';
import { loadServerPackage, RLS_SERVICE, serviceDefinition } from '../../../src/server/grpc/protos.js';

const method = serviceDefinition(loadServerPackage(), RLS_SERVICE)['ShouldRateLimit']!;

/** Encodes a request object and decodes it exactly as the server does. */
function decodeAsServer(req: object): WireRateLimitRequest {
  return method.requestDeserialize(method.requestSerialize(req)) as WireRateLimitRequest;
}

function descriptor(d: Partial<WireDescriptor>): WireDescriptor {
  return { entries: [{ key: 'k', value: 'v' }], limit: null, hitsAddend: null, ...d };
}

const HEADERS = { limit: 'RateLimit-Limit', remaining: 'RateLimit-Remaining', reset: 'RateLimit-Reset' };

function limited(over: boolean, remaining: number, resetMs: number, requestsPerUnit = 10, unit: Unit = 'minute'): DescriptorStatus {
  return {
    code: over ? 'OVER_LIMIT' : 'OK',
    limit: { requestsPerUnit, unit, unitMultiplier: 1, name: undefined },
    remaining,
    resetMs,
    shadowed: false,
    unlimited: false,
  };
}

const NO_RULE: DescriptorStatus = { code: 'OK', remaining: 0, resetMs: 0, shadowed: false, unlimited: false };
const UNLIMITED: DescriptorStatus = { code: 'OK', remaining: 0, resetMs: 0, shadowed: false, unlimited: true, ruleKey: 'd.k' };

describe('requestToCheck (wire -> domain)', () => {
  it('maps every field of a decoded request', () => {
    const wire = decodeAsServer({
      domain: 'edge',
      hitsAddend: 3,
      descriptors: [
        {
          entries: [
            { key: 'company', value: 'acme' },
            { key: 'path', value: '/v1' },
          ],
          limit: { requestsPerUnit: 50, unit: 'HOUR' },
          hitsAddend: { value: '7' },
        },
        { entries: [{ key: 'remote_address', value: '10.0.0.1' }] },
      ],
    });
    expect(requestToCheck(wire)).toEqual({
      domain: 'edge',
      hitsAddend: 3,
      descriptors: [
        {
          entries: [
            { key: 'company', value: 'acme' },
            { key: 'path', value: '/v1' },
          ],
          limitOverride: { requestsPerUnit: 50, unit: 'hour' },
          hitsAddend: 7,
        },
        { entries: [{ key: 'remote_address', value: '10.0.0.1' }], limitOverride: undefined, hitsAddend: undefined },
      ],
    });
  });

  it('decodes absent scalars to proto3 defaults (empty domain, hits_addend 0, empty value)', () => {
    const check = requestToCheck(decodeAsServer({ descriptors: [{ entries: [{ key: 'k' }] }] }));
    expect(check).toEqual({
      domain: '',
      hitsAddend: 0,
      descriptors: [{ entries: [{ key: 'k', value: '' }], limitOverride: undefined, hitsAddend: undefined }],
    });
    expect(requestToCheck(decodeAsServer({}))).toEqual({ domain: '', hitsAddend: 0, descriptors: [] });
  });

  it('distinguishes an absent hits_addend wrapper from one set to 0', () => {
    const absent = requestToCheck(decodeAsServer({ domain: 'd', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }] }));
    const zero = requestToCheck(
      decodeAsServer({ domain: 'd', descriptors: [{ entries: [{ key: 'k', value: 'v' }], hitsAddend: { value: 0 } }] }),
    );
    expect(absent.descriptors[0]!.hitsAddend).toBeUndefined();
    expect(zero.descriptors[0]!.hitsAddend).toBe(0);
    expect(Object.hasOwn(zero.descriptors[0]!, 'hitsAddend')).toBe(true);
  });

  it('accepts uint64 hits_addend up to 2^53-1 and rejects larger values instead of rounding them', () => {
    const ok = decodeAsServer({ domain: 'd', descriptors: [{ entries: [], hitsAddend: { value: '9007199254740991' } }] });
    expect(ok.descriptors[0]!.hitsAddend).toEqual({ value: '9007199254740991' });
    expect(requestToCheck(ok).descriptors[0]!.hitsAddend).toBe(Number.MAX_SAFE_INTEGER);

    for (const value of ['9007199254740992', '9007199254740993', '18446744073709551615']) {
      const wire = decodeAsServer({ domain: 'd', descriptors: [{ entries: [], hitsAddend: { value } }] });
      expect(wire.descriptors[0]!.hitsAddend).toEqual({ value });
      expect(() => requestToCheck(wire)).toThrow(InvalidRequestError);
      expect(() => requestToCheck(wire)).toThrow(
        `descriptors[0].hits_addend must be an integer between 0 and 9007199254740991, got ${value}`,
      );
    }
  });

  it('accepts a numeric uint64 (from JSON) with the same bounds', () => {
    expect(
      requestToCheck({ domain: 'd', hitsAddend: 0, descriptors: [descriptor({ hitsAddend: { value: 12 } })] }).descriptors[0]!.hitsAddend,
    ).toBe(12);
    expect(() => requestToCheck({ domain: 'd', hitsAddend: 0, descriptors: [descriptor({ hitsAddend: { value: 2 ** 53 } })] })).toThrow(
      InvalidRequestError,
    );
  });

  it('maps every envoy.type.v3.RateLimitUnit to the domain unit', () => {
    const table: [number, Unit][] = [
      [1, 'second'],
      [2, 'minute'],
      [3, 'hour'],
      [4, 'day'],
      [5, 'month'],
      [6, 'year'],
      [7, 'week'],
    ];
    for (const [unit, expected] of table) {
      const check = requestToCheck({ domain: 'd', hitsAddend: 0, descriptors: [descriptor({ limit: { requestsPerUnit: 4, unit } })] });
      expect(check.descriptors[0]!.limitOverride).toEqual({ requestsPerUnit: 4, unit: expected });
    }
  });

  it('maps unit names through the real decoder (WEEK = 7, MONTH = 5)', () => {
    const wire = decodeAsServer({
      domain: 'd',
      descriptors: [
        { entries: [], limit: { requestsPerUnit: 1, unit: 'WEEK' } },
        { entries: [], limit: { requestsPerUnit: 2, unit: 'MONTH' } },
      ],
    });
    expect(wire.descriptors.map((d) => d.limit)).toEqual([
      { requestsPerUnit: 1, unit: 7 },
      { requestsPerUnit: 2, unit: 5 },
    ]);
    expect(requestToCheck(wire).descriptors.map((d) => d.limitOverride)).toEqual([
      { requestsPerUnit: 1, unit: 'week' },
      { requestsPerUnit: 2, unit: 'month' },
    ]);
  });

  it('rejects an override with UNKNOWN or an undefined unit number', () => {
    for (const unit of [0, 8, 99]) {
      const req = { domain: 'd', hitsAddend: 0, descriptors: [descriptor({}), descriptor({ limit: { requestsPerUnit: 4, unit } })] };
      expect(() => requestToCheck(req)).toThrow(InvalidRequestError);
      expect(() => requestToCheck(req)).toThrow(`descriptors[1].limit.unit must be a known RateLimitUnit, got ${unit}`);
    }
    // An override present on the wire with every field at its default decodes as UNKNOWN.
    const wire = decodeAsServer({ domain: 'd', descriptors: [{ entries: [], limit: {} }] });
    expect(wire.descriptors[0]!.limit).toEqual({ requestsPerUnit: 0, unit: 0 });
    expect(() => requestToCheck(wire)).toThrow(InvalidRequestError);
  });

  it('rejects a request the codec found invalid UTF-8 in, naming the field', () => {
    const wire = decodeRateLimitRequest(
      Buffer.from(method.requestSerialize({ domain: 'd', descriptors: [{ entries: [{ key: 'k', value: 'X' }] }] })).map((b) =>
        b === 0x58 ? 0xff : b,
      ) as Buffer,
    );
    expect(wire.invalidUtf8).toBe('descriptors[0].entries[0].value');
    expect(() => requestToCheck(wire)).toThrow(InvalidRequestError);
    expect(() => requestToCheck(wire)).toThrow('descriptors[0].entries[0].value is not valid UTF-8');
    expect(() => requestToCheck({ domain: '\ufffd', descriptors: [], hitsAddend: 0, invalidUtf8: 'domain' })).toThrow(
      'domain is not valid UTF-8',
    );
  });
});

describe('statusToWire', () => {
  it('reports a limited descriptor with its limit, remaining and whole-second reset', () => {
    const s: DescriptorStatus = {
      code: 'OVER_LIMIT',
      limit: { requestsPerUnit: 100, unit: 'hour', unitMultiplier: 1, name: 'per-company' },
      remaining: 0,
      resetMs: 1_234_001,
      shadowed: false,
      unlimited: false,
    };
    expect(statusToWire(s)).toEqual({
      code: WireCode.OVER_LIMIT,
      currentLimit: { name: 'per-company', requestsPerUnit: 100, unit: 3 },
      limitRemaining: 0,
      durationUntilReset: { seconds: 1235 },
    });
  });

  it('maps every domain unit to RateLimitResponse.RateLimit.Unit', () => {
    const table: [Unit, number][] = [
      ['second', 1],
      ['minute', 2],
      ['hour', 3],
      ['day', 4],
      ['month', 5],
      ['year', 6],
      ['week', 7],
    ];
    for (const [unit, expected] of table) {
      expect(statusToWire(limited(false, 1, 1000, 5, unit)).currentLimit).toEqual({ name: '', requestsPerUnit: 5, unit: expected });
    }
  });

  it('reports a descriptor no rule matched as OK without a limit (envoyproxy/ratelimit: remaining 0)', () => {
    expect(statusToWire(NO_RULE)).toEqual({ code: WireCode.OK, currentLimit: undefined, limitRemaining: 0, durationUntilReset: undefined });
  });

  it('reports an unlimited descriptor as OK with limit_remaining 2^32-1 and no limit', () => {
    expect(statusToWire(UNLIMITED)).toEqual({
      code: WireCode.OK,
      currentLimit: undefined,
      limitRemaining: 4_294_967_295,
      durationUntilReset: undefined,
    });
  });

  it('reports a shadowed over-limit descriptor with the code the limiter chose (OK)', () => {
    const s: DescriptorStatus = { ...limited(false, 0, 500), shadowed: true };
    expect(statusToWire(s).code).toBe(WireCode.OK);
  });

  it('clamps values that do not fit the uint32 wire fields', () => {
    const w = statusToWire(limited(false, 2 ** 40, 1000, 2 ** 33));
    expect(w.limitRemaining).toBe(MAX_UINT32);
    expect(w.currentLimit!.requestsPerUnit).toBe(MAX_UINT32);
  });
});

describe('resetDuration', () => {
  it('rounds milliseconds up to whole seconds and never sends nanos', () => {
    expect(resetDuration(0)).toEqual({ seconds: 0 });
    expect(resetDuration(1)).toEqual({ seconds: 1 });
    expect(resetDuration(999)).toEqual({ seconds: 1 });
    expect(resetDuration(1000)).toEqual({ seconds: 1 });
    expect(resetDuration(1001)).toEqual({ seconds: 2 });
    expect(resetDuration(59_999)).toEqual({ seconds: 60 });
    expect(resetDuration(86_400_000)).toEqual({ seconds: 86_400 });
  });

  it('matches envoyproxy/ratelimit (window - now % window) for a fixed window at any millisecond', () => {
    const window = 60;
    for (const nowMs of [1_700_000_000_000, 1_700_000_000_001, 1_700_000_059_999, 1_700_000_030_500]) {
      const windowEndMs = (Math.floor(nowMs / 1000 / window) + 1) * window * 1000;
      const nowS = Math.floor(nowMs / 1000);
      expect(resetDuration(windowEndMs - nowMs).seconds).toBe(window - (nowS % window));
    }
  });
});

describe('decisionToResponse (domain -> wire)', () => {
  it('maps the overall code and one status per descriptor, in order', () => {
    const decision: Decision = { code: 'OVER_LIMIT', statuses: [limited(false, 4, 10_000), NO_RULE, limited(true, 0, 2_000), UNLIMITED] };
    const res = decisionToResponse(decision);
    expect(res.overallCode).toBe(WireCode.OVER_LIMIT);
    expect(res.statuses.map((s) => [s.code, s.limitRemaining])).toEqual([
      [WireCode.OK, 4],
      [WireCode.OK, 0],
      [WireCode.OVER_LIMIT, 0],
      [WireCode.OK, MAX_UINT32],
    ]);
    expect(res.responseHeadersToAdd).toBeUndefined();
    expect(res.dynamicMetadata).toBeUndefined();
    expect(decisionToResponse({ code: 'OK', statuses: [NO_RULE] }).overallCode).toBe(WireCode.OK);
  });

  it('adds the rate-limit headers of the descriptor with the fewest remaining (first on ties)', () => {
    const decision: Decision = {
      code: 'OK',
      statuses: [limited(false, 7, 30_000, 10), limited(false, 3, 45_500, 20, 'hour'), limited(false, 3, 1_000, 30), NO_RULE, UNLIMITED],
    };
    expect(decisionToResponse(decision, HEADERS).responseHeadersToAdd).toEqual([
      { key: 'RateLimit-Limit', value: '20' },
      { key: 'RateLimit-Remaining', value: '3' },
      { key: 'RateLimit-Reset', value: '46' },
    ]);
  });

  it('reports the last over-limit descriptor even when another has fewer remaining before it', () => {
    const decision: Decision = {
      code: 'OVER_LIMIT',
      statuses: [limited(true, 0, 5_000, 10), limited(false, 0, 9_000, 20), limited(true, 0, 61_000, 30), limited(false, 1, 1_000, 40)],
    };
    expect(decisionToResponse(decision, HEADERS).responseHeadersToAdd).toEqual([
      { key: 'RateLimit-Limit', value: '30' },
      { key: 'RateLimit-Remaining', value: '0' },
      { key: 'RateLimit-Reset', value: '61' },
    ]);
  });

  it('an over-limit quota descriptor does not claim the headers, it competes on remaining (upstream shouldRateLimitWorker)', () => {
    const quota = (d: DescriptorStatus): DescriptorStatus => ({ ...d, quota: true });
    const decision: Decision = {
      code: 'OK',
      statuses: [limited(false, 0, 9_000, 20), quota(limited(true, 0, 61_000, 30)), quota(limited(false, 4, 1_000, 40))],
    };
    expect(decisionToResponse(decision, HEADERS).responseHeadersToAdd).toEqual([
      { key: 'RateLimit-Limit', value: '20' },
      { key: 'RateLimit-Remaining', value: '0' },
      { key: 'RateLimit-Reset', value: '9' },
    ]);
  });

  it('uses the configured header names', () => {
    const res = decisionToResponse(
      { code: 'OK', statuses: [limited(false, 1, 1_000, 2)] },
      { limit: 'X-L', remaining: 'X-R', reset: 'X-Z' },
    );
    expect(res.responseHeadersToAdd).toEqual([
      { key: 'X-L', value: '2' },
      { key: 'X-R', value: '1' },
      { key: 'X-Z', value: '1' },
    ]);
  });

  it('adds no headers when no descriptor has a limit (no rule, unlimited)', () => {
    expect(decisionToResponse({ code: 'OK', statuses: [NO_RULE, UNLIMITED] }, HEADERS).responseHeadersToAdd).toBeUndefined();
  });

  it('carries a degraded reason in dynamic_metadata', () => {
    for (const reason of ['circuit_open', 'backend_error', 'local_fallback'] as const) {
      const res = decisionToResponse({ code: 'OK', statuses: [NO_RULE], degraded: reason });
      expect(res.dynamicMetadata).toEqual({ fields: { [DEGRADED_METADATA_KEY]: { stringValue: reason } } });
    }
    expect(DEGRADED_METADATA_KEY).toBe('meshlimit.degraded');
  });

  it('encodes through protobufjs and decodes back to the same values', () => {
    const res = decisionToResponse(
      {
        code: 'OVER_LIMIT',
        statuses: [
          { ...limited(true, 0, 2_500, 10, 'second'), limit: { requestsPerUnit: 10, unit: 'second', unitMultiplier: 1, name: 'n' } },
          UNLIMITED,
        ],
        degraded: 'circuit_open',
      },
      HEADERS,
    );
    const decoded = method.responseDeserialize(method.responseSerialize(res));
    expect(decoded).toEqual({
      overallCode: 2,
      statuses: [
        {
          code: 2,
          currentLimit: { name: 'n', requestsPerUnit: 10, unit: 1 },
          limitRemaining: 0,
          durationUntilReset: { seconds: '3', nanos: 0 },
          quota: null,
        },
        { code: 1, currentLimit: null, limitRemaining: MAX_UINT32, durationUntilReset: null, quota: null },
      ],
      responseHeadersToAdd: [
        { key: 'RateLimit-Limit', value: '10', rawValue: Buffer.alloc(0) },
        { key: 'RateLimit-Remaining', value: '0', rawValue: Buffer.alloc(0) },
        { key: 'RateLimit-Reset', value: '3', rawValue: Buffer.alloc(0) },
      ],
      requestHeadersToAdd: [],
      rawBody: Buffer.alloc(0),
      dynamicMetadata: { fields: { 'meshlimit.degraded': { stringValue: 'circuit_open' } } },
      quota: null,
    });
  });
});
