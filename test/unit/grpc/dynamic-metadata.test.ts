import { describe, expect, it } from 'vitest';
import type { Decision, RateLimitCheck } from '../../../src/limiter/types.js';
import { encodeRateLimitResponse } from '../../../src/server/grpc/codec-encode.js';
import { decisionToResponse, DEGRADED_METADATA_KEY } from '../../../src/server/grpc/mapping.js';
import { loadServerPackage, RLS_SERVICE, serviceDefinition } from '../../../src/server/grpc/protos.js';
import { decisionToJson } from '../../../src/server/http/proto-json.js';

/**
 * RESPONSE_DYNAMIC_METADATA on the wire: the Struct envoyproxy/ratelimit's `ratelimitToMetadata`
 * builds (src/service/ratelimit.go; expected shapes from its src/service/ratelimit_test.go
 * TestRatelimitToMetadata), through both transports: the gRPC response (decoded by proto-loader,
 * as Envoy would read it) and `/json` (protojson: a Struct is a plain JSON object).
 */

const method = serviceDefinition(loadServerPackage(), RLS_SERVICE)['ShouldRateLimit']!;
const OK = { code: 'OK' as const, remaining: 0, resetMs: 0, shadowed: false, unlimited: false };

const request: RateLimitCheck = {
  domain: 'mixed-domain',
  hitsAddend: 5,
  descriptors: [
    { entries: [{ key: 'regular_key', value: 'regular_val' }] },
    { entries: [{ key: 'quota_key', value: 'quota_val' }], hitsAddend: 0 },
    { entries: [], limitOverride: { requestsPerUnit: 42, unit: 'minute' } },
  ],
};

/** google.protobuf.Struct / Value as proto-loader decodes them (SERVER_LOADER_OPTIONS) -> plain JSON. */
function plain(v: Record<string, unknown> | null | undefined): unknown {
  if (v == null) return v;
  if ('fields' in v) return Object.fromEntries(Object.entries(v['fields'] as Record<string, never>).map(([k, x]) => [k, plain(x)]));
  if ('nullValue' in v) return null;
  if ('structValue' in v) return plain(v['structValue'] as Record<string, unknown>);
  if ('listValue' in v) return ((v['listValue'] as { values?: Record<string, unknown>[] }).values ?? []).map(plain);
  const kind = ['stringValue', 'numberValue', 'boolValue'].find((k) => k in v);
  return kind === undefined ? undefined : v[kind];
}

function overGrpc(decision: Decision): unknown {
  const bytes = encodeRateLimitResponse(decisionToResponse(decision));
  return plain((method.responseDeserialize(bytes) as { dynamicMetadata: Record<string, unknown> | null }).dynamicMetadata);
}

describe('dynamic_metadata (RESPONSE_DYNAMIC_METADATA)', () => {
  const decision: Decision = {
    code: 'OK',
    statuses: [OK, OK, OK],
    request,
    metadata: Object.assign(Object.create(null) as Record<string, never>, {
      service_with_quota: { name: 'service_2', weight: 2.5, tags: ['a', true, null] },
    }),
  };
  const expected = {
    domain: 'mixed-domain',
    descriptors: [
      { entries: ['regular_key=regular_val'] },
      { entries: ['quota_key=quota_val'], hitsAddend: 0 },
      { entries: [], limit: 'requests_per_unit:42 unit:MINUTE' },
    ],
    hitsAddend: 5,
    metadata: { service_with_quota: { name: 'service_2', weight: 2.5, tags: ['a', true, null] } },
  };

  it('gRPC: domain, descriptors (entries as key=value, limit and hitsAddend when sent), hitsAddend, merged metadata', () => {
    expect(overGrpc(decision)).toEqual(expected);
  });

  it('/json: the same Struct as a JSON object', () => {
    expect(JSON.parse(JSON.stringify(decisionToJson(decision).dynamicMetadata))).toEqual(expected);
  });

  it('without passed metadata and with request hitsAddend 0: only domain and descriptors (upstream omits the rest)', () => {
    const d: Decision = {
      code: 'OK',
      statuses: [OK],
      request: { domain: 'fake-domain', hitsAddend: 0, descriptors: [request.descriptors[0]!] },
    };
    expect(overGrpc(d)).toEqual({ domain: 'fake-domain', descriptors: [{ entries: ['regular_key=regular_val'] }] });
  });

  it("keeps meshlimit's own degraded key alongside, and sends it alone when the setting is off", () => {
    expect(overGrpc({ ...decision, degraded: 'circuit_open' })).toEqual({ ...expected, [DEGRADED_METADATA_KEY]: 'circuit_open' });
    expect(overGrpc({ code: 'OK', statuses: [OK], degraded: 'local_fallback' })).toEqual({ [DEGRADED_METADATA_KEY]: 'local_fallback' });
    expect(decisionToResponse({ code: 'OK', statuses: [OK] }).dynamicMetadata).toBeUndefined();
  });

  it('a metadata key named __proto__ is data, on both transports', () => {
    const metadata = JSON.parse('{"__proto__": {"x": 1}}') as Record<string, never>;
    const d: Decision = { code: 'OK', statuses: [OK], request: { domain: 'd', hitsAddend: 0, descriptors: [] }, metadata };
    const md = decisionToResponse(d).dynamicMetadata!.fields['metadata']!.structValue!;
    expect(Object.keys(md.fields)).toEqual(['__proto__']);
    expect(Object.keys(decisionToJson(d).dynamicMetadata!['metadata'] as object)).toEqual(['__proto__']);
  });
});
