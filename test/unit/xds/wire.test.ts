import { describe, expect, it } from 'vitest';
import { discoveryRequest, toDiscoveryResponse, toRateLimitConfig, unpackResources } from '../../../src/xds/mapping.js';
import { decodeMessage, encodeMessage, xdsTypes } from '../../../src/xds/protos.js';

/**
 * The xDS field numbers against bytes built by hand from the upstream protos (rls_conf.proto,
 * discovery.proto, base.proto, google/rpc/status.proto), so a renumbering in proto/ fails here.
 */

// Protobuf wire format, by hand: varint, tag, length-delimited.
const varint = (n: number): number[] => {
  const out: number[] = [];
  for (let v = n; ; v = Math.floor(v / 128)) {
    if (v < 128) return [...out, v];
    out.push((v & 0x7f) | 0x80);
  }
};
const field = (n: number, wire: 0 | 2, body: number[] | number): number[] =>
  wire === 0
    ? [...varint(n * 8), ...varint(body as number)]
    : [...varint(n * 8 + 2), ...varint((body as number[]).length), ...(body as number[])];
const str = (n: number, s: string): number[] => field(n, 2, [...Buffer.from(s)]);
const msg = (n: number, ...parts: number[][]): number[] => field(n, 2, parts.flat());
const num = (n: number, v: number): number[] => field(n, 0, v);

/** Field number -> values (varints as numbers, length-delimited as Buffers), read by hand. */
function fields(bytes: Uint8Array): Map<number, (number | Buffer)[]> {
  const out = new Map<number, (number | Buffer)[]>();
  let i = 0;
  const readVarint = (): number => {
    let v = 0;
    for (let shift = 1; ; shift *= 128) {
      const b = bytes[i++]!;
      v += (b & 0x7f) * shift;
      if (b < 128) return v;
    }
  };
  while (i < bytes.length) {
    const tag = readVarint();
    let value: number | Buffer;
    if ((tag & 7) === 0) value = readVarint();
    else {
      const length = readVarint();
      value = Buffer.from(bytes.subarray(i, i + length));
      i += length;
    }
    out.set(tag >>> 3, [...(out.get(tag >>> 3) ?? []), value]);
  }
  return out;
}

describe('rls_conf.proto field numbers', () => {
  it('every field of RateLimitConfig, RateLimitDescriptor, RateLimitPolicy and RateLimitReplace', () => {
    const policy = [num(1, 7), num(2, 42), num(3, 1), str(4, 'p'), msg(5, str(1, 'other'))];
    const child = [str(1, 'child')];
    const struct = msg(1, str(1, 'team'), msg(2, str(3, 'payments'))); // Struct.fields map entry: key 1, Value 2 (string_value 3)
    const descriptor = [str(1, 'k'), str(2, 'v'), msg(3, ...policy), msg(4, ...child), num(5, 1), num(6, 1), num(7, 1), msg(8, struct)];
    const bytes = Buffer.from([...str(1, 'name-1'), ...str(2, 'edge'), ...msg(3, ...descriptor)]);
    expect(toRateLimitConfig(decodeMessage(xdsTypes().rateLimitConfig, bytes))).toEqual({
      name: 'name-1',
      domain: 'edge',
      descriptors: [
        {
          key: 'k',
          value: 'v',
          rateLimit: { unit: 'WEEK', requestsPerUnit: 42, unlimited: true, name: 'p', replaces: [{ name: 'other' }] },
          descriptors: [
            {
              key: 'child',
              value: '',
              rateLimit: null,
              descriptors: [],
              shadowMode: false,
              detailedMetric: false,
              quotaMode: false,
              metadata: null,
            },
          ],
          shadowMode: true,
          detailedMetric: true,
          quotaMode: true,
          metadata: { team: 'payments' },
        },
      ],
    });
  });

  it('RateLimitUnit numbers: UNKNOWN 0, SECOND 1, MINUTE 2, HOUR 3, DAY 4, MONTH 5, YEAR 6, WEEK 7; others stay numbers', () => {
    const unitOf = (n: number) =>
      toRateLimitConfig(decodeMessage(xdsTypes().rateLimitConfig, Buffer.from(msg(3, str(1, 'k'), msg(3, num(1, n)))))).descriptors[0]!
        .rateLimit!.unit;
    expect([0, 1, 2, 3, 4, 5, 6, 7, 9].map(unitOf)).toEqual(['UNKNOWN', 'SECOND', 'MINUTE', 'HOUR', 'DAY', 'MONTH', 'YEAR', 'WEEK', 9]);
  });
});

describe('discovery.proto field numbers', () => {
  it('a DiscoveryResponse: version_info 1, resources 2 (Any: type_url 1, value 2), type_url 4, nonce 5, control_plane 6', () => {
    const type = 'type.googleapis.com/ratelimit.config.ratelimit.v3.RateLimitConfig';
    const resource = [...str(1, 'r'), ...str(2, 'd')];
    const bytes = Buffer.from([
      ...str(1, 'v7'),
      ...msg(2, str(1, type), field(2, 2, resource)),
      ...str(4, type),
      ...str(5, 'n3'),
      ...msg(6, str(1, 'cp-1')),
    ]);
    const response = toDiscoveryResponse(decodeMessage(xdsTypes().discoveryResponse, bytes));
    expect(response).toMatchObject({ versionInfo: 'v7', typeUrl: type, nonce: 'n3', controlPlane: 'cp-1' });
    expect(unpackResources(response)).toMatchObject([{ name: 'r', domain: 'd', descriptors: [] }]);
  });

  it('a NACK: version_info 1, node 2 (id 1, metadata 3, user_agent_name 6, user_agent_version 7), type_url 4, response_nonce 5, error_detail 6 (code 1, message 2)', () => {
    const node = { id: 'envoy-ratelimit', metadata: { zone: 'eu-1' } };
    const bytes = encodeMessage(xdsTypes().discoveryRequest, discoveryRequest(node, 'v1', 'n2', 'xds:edge: bad'));
    const top = fields(bytes);
    expect([...top.keys()].sort()).toEqual([1, 2, 4, 5, 6]);
    expect(top.get(1)!.map(String)).toEqual(['v1']);
    expect(top.get(4)!.map(String)).toEqual(['type.googleapis.com/ratelimit.config.ratelimit.v3.RateLimitConfig']);
    expect(top.get(5)!.map(String)).toEqual(['n2']);
    const n = fields(top.get(2)![0] as Buffer);
    expect(n.get(1)!.map(String)).toEqual(['envoy-ratelimit']);
    expect(n.get(6)!.map(String)).toEqual(['meshlimit']);
    expect(n.get(7)).toHaveLength(1);
    // metadata: Struct { fields (1): entry { key (1), value (2): Value { string_value (3) } } }
    const entry = fields(fields(n.get(3)![0] as Buffer).get(1)![0] as Buffer);
    expect(String(entry.get(1)![0])).toBe('zone');
    expect(String(fields(entry.get(2)![0] as Buffer).get(3)![0])).toBe('eu-1');
    const status = fields(top.get(6)![0] as Buffer);
    expect(status.get(1)).toEqual([13]);
    expect(status.get(2)!.map(String)).toEqual(['xds:edge: bad']);
  });

  it('an ACK carries no error_detail, and a subscription no version and no nonce', () => {
    const node = { id: 'n', metadata: {} };
    expect([...fields(encodeMessage(xdsTypes().discoveryRequest, discoveryRequest(node, 'v1', 'n1'))).keys()].sort()).toEqual([1, 2, 4, 5]);
    expect([...fields(encodeMessage(xdsTypes().discoveryRequest, discoveryRequest(node, '', ''))).keys()].sort()).toEqual([2, 4]);
  });
});
