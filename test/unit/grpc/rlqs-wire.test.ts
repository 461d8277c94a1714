/**
 * RLQS wire compatibility with upstream numbering, independent of our .proto files: a usage
 * report is written by hand from envoyproxy/envoy's field numbers and decoded by the server's
 * deserializer; the server's serialized response is taken apart by hand.
 *
 * Upstream numbering checked here:
 *   RateLimitQuotaUsageReports: domain=1, bucket_quota_usages=2
 *   BucketQuotaUsage: bucket_id=1, time_elapsed=2, num_requests_allowed=3, num_requests_denied=4
 *   BucketId: bucket=1 (map<string,string>: key=1, value=2); Duration: seconds=1
 *   RateLimitQuotaResponse: bucket_action=1
 *   BucketAction: bucket_id=1, quota_assignment_action=2, abandon_action=3
 *   QuotaAssignmentAction: assignment_time_to_live=2, rate_limit_strategy=3
 *   RateLimitStrategy: blanket_rule=1 (ALLOW_ALL=0, DENY_ALL=1), requests_per_time_unit=2, token_bucket=3
 *   TokenBucket: max_tokens=1, tokens_per_fill=2 (UInt32Value: value=1), fill_interval=3
 */
import type { MethodDefinition } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { loadServerPackage, RLQS_SERVICE } from '../../../src/server/grpc/protos.js';
import { abandonAction, verdictAction } from '../../../src/server/grpc/rlqs/mapping.js';

const method = (loadServerPackage()[RLQS_SERVICE] as Record<string, MethodDefinition<object, object>>)['StreamRateLimitQuotas']!;

const varint = (n: number): Buffer => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
};
const v = (no: number, n: number): Buffer => Buffer.concat([varint(no << 3), varint(n)]);
const l = (no: number, body: Buffer | string): Buffer => {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  return Buffer.concat([varint((no << 3) | 2), varint(b.length), b]);
};
const cat = (...b: Buffer[]): Buffer => Buffer.concat(b);

describe('RLQS wire numbering', () => {
  it('decodes a usage report written from upstream field numbers', () => {
    const bucketId = l(1, cat(l(1, 'api'), l(2, 'orders')));
    const usage = cat(l(1, bucketId), l(2, v(1, 3)), v(3, 40), v(4, 2));
    const bytes = cat(l(1, 'edge'), l(2, usage));
    expect(method.requestDeserialize(bytes)).toEqual({
      domain: 'edge',
      bucketQuotaUsages: [
        {
          bucketId: { bucket: { api: 'orders' } },
          timeElapsed: { seconds: '3', nanos: 0 },
          numRequestsAllowed: '40',
          numRequestsDenied: '2',
        },
      ],
    });
  });

  it('encodes a token-bucket assignment, a DENY_ALL, an explicit ALLOW_ALL (0) and an abandon at upstream numbers', () => {
    const id = { bucket: { api: 'orders' } };
    const response = {
      bucketAction: [
        verdictAction(id, { kind: 'token_bucket', tokensPerFill: 7, fillIntervalSec: 1, maxTokens: 7, ttlSec: 2 }),
        verdictAction(id, { kind: 'deny_all', ttlSec: 2 }),
        verdictAction(id, { kind: 'allow_all', ttlSec: 0 }),
        abandonAction(id),
      ],
    };
    const bucketId = l(1, l(1, cat(l(1, 'api'), l(2, 'orders'))));
    // TTL 0 is a present Duration (seconds written as 0): set, so Envoy expires at once.
    const ttl = (s: number): Buffer => l(2, v(1, s));
    const expected = cat(
      l(1, cat(bucketId, l(2, cat(ttl(2), l(3, l(3, cat(v(1, 7), l(2, v(1, 7)), l(3, v(1, 1))))))))),
      l(1, cat(bucketId, l(2, cat(ttl(2), l(3, v(1, 1)))))),
      l(1, cat(bucketId, l(2, cat(ttl(0), l(3, v(1, 0)))))),
      l(1, cat(bucketId, l(3, Buffer.alloc(0)))),
    );
    expect(method.responseSerialize(response).toString('hex')).toBe(expected.toString('hex'));
  });
});
