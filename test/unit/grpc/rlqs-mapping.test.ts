/** The bucket id -> descriptor mapping (README "RLQS" > Buckets are descriptors) and RLQS_BUCKET_KEY_ORDER's parsing. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_STRING_LIMITS } from '../../../src/limiter/string-limits.js';
import { bucketEntries, toBucketUsage } from '../../../src/server/grpc/rlqs/mapping.js';
import { loadSettings } from '../../../src/settings/index.js';

describe('bucket id -> descriptor', () => {
  it('sorts the keys by code point when no order is configured, whatever order the map has', () => {
    expect(bucketEntries({ tenant: 'acme', path: '/api', Zone: 'z' }, [])).toEqual([
      { key: 'Zone', value: 'z' },
      { key: 'path', value: '/api' },
      { key: 'tenant', value: 'acme' },
    ]);
  });

  it('puts RLQS_BUCKET_KEY_ORDER keys first, in that order, then the rest sorted; listed keys absent from the bucket are skipped', () => {
    expect(bucketEntries({ path: '/api', tenant: 'acme', b: '2', a: '1' }, ['tenant', 'missing', 'path'])).toEqual([
      { key: 'tenant', value: 'acme' },
      { key: 'path', value: '/api' },
      { key: 'a', value: '1' },
      { key: 'b', value: '2' },
    ]);
  });

  it('two maps with the same entries in another order are one bucket', () => {
    const limits = { strings: DEFAULT_STRING_LIMITS, maxBucketEntries: 32 };
    const u = (bucket: Record<string, string>) =>
      toBucketUsage({ bucketId: { bucket }, timeElapsed: null, numRequestsAllowed: '1', numRequestsDenied: '0' }, 0, [], limits);
    expect(u({ a: '1', b: '2' }).key).toBe(u({ b: '2', a: '1' }).key);
    expect(u({ a: '1', b: '2' }).key).not.toBe(u({ a: '1b', b: '2' }).key);
    expect(u({ a: '1' }).elapsedSec).toBe(0);
  });

  it('a count above 2^53 is INVALID_ARGUMENT naming the field', () => {
    const limits = { strings: DEFAULT_STRING_LIMITS, maxBucketEntries: 32 };
    expect(() =>
      toBucketUsage(
        { bucketId: { bucket: { a: '1' } }, timeElapsed: null, numRequestsAllowed: '18446744073709551615', numRequestsDenied: '0' },
        2,
        [],
        limits,
      ),
    ).toThrow('bucket_quota_usages[2].num_requests_allowed is 18446744073709551615; at most 9007199254740991');
  });
});

describe('RLQS settings', () => {
  it('RLQS_BUCKET_KEY_ORDER is a comma list; a key listed twice is an error naming the setting', () => {
    expect(loadSettings({ RLQS_BUCKET_KEY_ORDER: ' tenant, path ,' }).rlqs.bucketKeyOrder).toEqual(['tenant', 'path']);
    expect(() => loadSettings({ RLQS_BUCKET_KEY_ORDER: 'a,b,a' })).toThrow(/RLQS_BUCKET_KEY_ORDER.*lists "a" twice/);
  });

  it('RLQS_UNMATCHED_BUCKET takes allow_all or deny_all; the bounds reject 0', () => {
    expect(loadSettings({ RLQS_UNMATCHED_BUCKET: 'DENY_ALL' }).rlqs.unmatched).toBe('deny_all');
    expect(() => loadSettings({ RLQS_UNMATCHED_BUCKET: 'maybe' })).toThrow(/RLQS_UNMATCHED_BUCKET/);
    for (const name of ['RLQS_MAX_STREAMS', 'RLQS_MAX_BUCKETS_PER_STREAM', 'RLQS_MAX_BUCKET_ENTRIES', 'RLQS_MAX_REPORTS_PER_SECOND']) {
      expect(() => loadSettings({ [name]: '0' }), name).toThrow(new RegExp(name));
    }
  });
});
