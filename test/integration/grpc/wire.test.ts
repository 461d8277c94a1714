/**
 * Wire compatibility with upstream numbering, independent of our .proto files: the request is
 * protobuf bytes written by hand from envoyproxy/envoy's field numbers, sent with identity
 * serializers, and the response bytes are taken apart by a tiny hand-written decoder.
 *
 * Upstream numbering checked here:
 *   RateLimitRequest: domain=1, descriptors=2, hits_addend=3
 *   RateLimitDescriptor: entries=1, limit=2, hits_addend=3 (UInt64Value: value=1)
 *   Entry: key=1, value=2; RateLimitOverride: requests_per_unit=1, unit=2
 *   RateLimitUnit / RateLimit.Unit: SECOND=1 MINUTE=2 HOUR=3 DAY=4 MONTH=5 YEAR=6 WEEK=7
 *   RateLimitResponse: overall_code=1, statuses=2, response_headers_to_add=3, dynamic_metadata=6
 *   DescriptorStatus: code=1, current_limit=2, limit_remaining=3, duration_until_reset=4
 *   RateLimit: requests_per_unit=1, unit=2, name=3; HeaderValue: key=1, value=2
 *   Code: OK=1, OVER_LIMIT=2; Duration: seconds=1; Struct: fields=1 (map key=1, value=2);
 *   Value: string_value=3
 */
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Decision } from '../../../src/limiter/types.js';
import { defaultBehaviour, startHarness, type Harness } from './harness.js';

const PATH = '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit';

// ---- hand encoding -------------------------------------------------------------------------

function varint(n: number | bigint): Buffer {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Buffer.from(out);
}
const vfield = (no: number, n: number | bigint): Buffer => Buffer.concat([varint((no << 3) | 0), varint(n)]);
const lfield = (no: number, body: Buffer | string): Buffer => {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return Buffer.concat([varint((no << 3) | 2), varint(b.length), b]);
};
const msg = (...parts: Buffer[]): Buffer => Buffer.concat(parts);

// ---- hand decoding -------------------------------------------------------------------------

type Fields = Map<number, (bigint | Buffer)[]>;

function decode(buf: Buffer): Fields {
  const fields: Fields = new Map();
  let pos = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = buf[pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const tag = Number(readVarint());
    const no = tag >>> 3;
    const wt = tag & 7;
    let value: bigint | Buffer;
    if (wt === 0) value = readVarint();
    else if (wt === 2) {
      const len = Number(readVarint());
      value = buf.subarray(pos, pos + len);
      pos += len;
    } else throw new Error(`unexpected wire type ${wt} for field ${no}`);
    const list = fields.get(no) ?? [];
    list.push(value);
    fields.set(no, list);
  }
  return fields;
}
const num = (f: Fields, no: number): bigint | undefined => f.get(no)?.[0] as bigint | undefined;
const sub = (f: Fields, no: number): Fields[] => (f.get(no) ?? []).map((b) => decode(b as Buffer));
const str = (f: Fields, no: number): string | undefined => (f.get(no)?.[0] as Buffer | undefined)?.toString('utf8');

function rawBytesCall(address: string, body: Buffer): Promise<Buffer> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest(
      PATH,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      new grpc.Metadata(),
      { deadline: Date.now() + 5000 },
      (err, value) => {
        client.close();
        if (err) reject(err);
        else resolve(value!);
      },
    );
  });
}

describe('RLS v3 wire format (hand-built bytes)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      headers: { limit: 'RateLimit-Limit', remaining: 'RateLimit-Remaining', reset: 'RateLimit-Reset' },
    });
  });
  afterEach(() => {
    h.behave(defaultBehaviour);
    h.calls.length = 0;
  });
  afterAll(() => h.close());

  it('decodes a request written from upstream field numbers', async () => {
    const request = msg(
      lfield(1, 'edge'),
      lfield(
        2,
        msg(
          lfield(1, msg(lfield(1, 'company'), lfield(2, 'acme'))),
          lfield(1, msg(lfield(1, 'path'), lfield(2, '/v1'))),
          lfield(2, msg(vfield(1, 10), vfield(2, 2))), // 10 per MINUTE
          lfield(3, msg(vfield(1, 5))), // hits_addend wrapper = 5
        ),
      ),
      lfield(2, msg(lfield(1, msg(lfield(1, 'ip'), lfield(2, '10.0.0.1'))), lfield(3, Buffer.alloc(0)))), // wrapper present, value 0
      lfield(2, msg(lfield(1, msg(lfield(1, 'k'), lfield(2, 'v'))), lfield(2, msg(vfield(1, 3), vfield(2, 7))))), // 3 per WEEK
      lfield(2, msg(lfield(2, msg(vfield(1, 1), vfield(2, 5))), lfield(1, msg(lfield(1, 'm'), lfield(2, 'n'))))), // MONTH, fields out of order
      vfield(3, 2), // request hits_addend
    );
    await rawBytesCall(h.address, request);
    expect(h.calls).toHaveLength(1);
    const check = h.calls[0]!.check;
    expect(check).toEqual({
      domain: 'edge',
      hitsAddend: 2,
      descriptors: [
        {
          entries: [
            { key: 'company', value: 'acme' },
            { key: 'path', value: '/v1' },
          ],
          limitOverride: { requestsPerUnit: 10, unit: 'minute' },
          hitsAddend: 5,
        },
        { entries: [{ key: 'ip', value: '10.0.0.1' }], limitOverride: undefined, hitsAddend: 0 },
        { entries: [{ key: 'k', value: 'v' }], limitOverride: { requestsPerUnit: 3, unit: 'week' }, hitsAddend: undefined },
        { entries: [{ key: 'm', value: 'n' }], limitOverride: { requestsPerUnit: 1, unit: 'month' }, hitsAddend: undefined },
      ],
    });
    expect(check.descriptors[1]!.hitsAddend).toBe(0);
    expect(check.descriptors[2]!.hitsAddend).toBeUndefined();
  });

  it('encodes the response with upstream field numbers', async () => {
    const decision: Decision = {
      code: 'OVER_LIMIT',
      statuses: [
        {
          code: 'OVER_LIMIT',
          limit: { requestsPerUnit: 10, unit: 'minute', unitMultiplier: 1, name: 'per-ip' },
          remaining: 0,
          resetMs: 4_001,
          shadowed: false,
          unlimited: false,
        },
        { code: 'OK', remaining: 0, resetMs: 0, shadowed: false, unlimited: true },
        {
          code: 'OK',
          limit: { requestsPerUnit: 7, unit: 'year', unitMultiplier: 1, name: undefined },
          remaining: 6,
          resetMs: 999,
          shadowed: false,
          unlimited: false,
        },
      ],
      degraded: 'backend_error',
    };
    h.behave(() => Promise.resolve(decision));
    const res = decode(await rawBytesCall(h.address, msg(lfield(1, 'edge'), lfield(2, lfield(1, msg(lfield(1, 'k'), lfield(2, 'v')))))));

    expect([...res.keys()].sort()).toEqual([1, 2, 3, 6]);
    expect(num(res, 1)).toBe(2n); // overall_code OVER_LIMIT

    const [over, unlimited, yearly] = sub(res, 2);
    expect(num(over!, 1)).toBe(2n);
    const limit = sub(over!, 2)[0]!;
    expect([num(limit, 1), num(limit, 2), str(limit, 3)]).toEqual([10n, 2n, 'per-ip']);
    expect(num(over!, 3) ?? 0n).toBe(0n);
    expect(num(sub(over!, 4)[0]!, 1)).toBe(5n); // duration_until_reset.seconds
    expect(sub(over!, 4)[0]!.has(2)).toBe(false); // no nanos

    expect(num(unlimited!, 1)).toBe(1n);
    expect(unlimited!.has(2)).toBe(false);
    expect(num(unlimited!, 3)).toBe(4_294_967_295n);
    expect(unlimited!.has(4)).toBe(false);

    const yearlyLimit = sub(yearly!, 2)[0]!;
    expect([num(yearlyLimit, 1), num(yearlyLimit, 2)]).toEqual([7n, 6n]); // YEAR = 6
    expect(num(yearly!, 3)).toBe(6n);
    expect(num(sub(yearly!, 4)[0]!, 1)).toBe(1n);

    expect(sub(res, 3).map((hv) => [str(hv, 1), str(hv, 2)])).toEqual([
      ['RateLimit-Limit', '10'],
      ['RateLimit-Remaining', '0'],
      ['RateLimit-Reset', '5'],
    ]);

    const entry = sub(sub(res, 6)[0]!, 1)[0]!; // Struct.fields map entry
    expect(str(entry, 1)).toBe('meshlimit.degraded');
    expect(str(sub(entry, 2)[0]!, 3)).toBe('backend_error');
  });

  it('answers DEADLINE_EXCEEDED without evaluating a request whose deadline has already passed on arrival', async () => {
    const body = msg(lfield(1, 'edge'), lfield(2, lfield(1, msg(lfield(1, 'k'), lfield(2, 'v')))));
    const frame = Buffer.concat([Buffer.from([0]), Buffer.alloc(4), body]);
    frame.writeUInt32BE(body.length, 1);
    const session = http2.connect(`http://127.0.0.1:${h.port}`);
    try {
      const status = await new Promise<string | undefined>((resolve, reject) => {
        const stream = session.request({
          ':method': 'POST',
          ':path': PATH,
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': '1n', // one nanosecond: expired by the time the handler runs
        });
        let grpcStatus: string | undefined;
        stream.on('response', (headers) => (grpcStatus ??= headers['grpc-status'] as string | undefined));
        stream.on('trailers', (trailers) => (grpcStatus ??= trailers['grpc-status'] as string | undefined));
        stream.on('error', reject);
        stream.on('close', () => resolve(grpcStatus));
        stream.resume();
        stream.end(frame);
      });
      expect(status).toBe(String(grpc.status.DEADLINE_EXCEEDED));
      expect(h.calls).toHaveLength(0);
    } finally {
      session.close();
    }
  });
});
