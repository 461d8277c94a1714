/**
 * Every bound of an RLQS stream, on a real gRPC server: the status it ends the stream with and
 * the setting its message names (README "RLQS" > Settings).
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TRANSPORT_LIMITS } from '../../../src/server/grpc/transport-guard.js';
import { harnessPerTest, usage } from './rlqs-harness.js';

const harness = harnessPerTest();
const { start, open } = harness;

describe('RLQS stream bounds', () => {
  it('RLQS_MAX_STREAMS: one stream more than the process allows is RESOURCE_EXHAUSTED', async () => {
    await start({ settings: { maxStreams: 1 } });
    const first = open('e1');
    first.send({ domain: 'rlqs', bucketQuotaUsages: [usage({ api: 'orders' })] });
    await first.responsesAtLeast(1);
    const second = open('e2');
    second.send({ domain: 'rlqs', bucketQuotaUsages: [usage({ api: 'orders' })] });
    const status = await second.ended;
    expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(status.details).toBe(
      'this process has 1 RLQS streams open; at most 1 (RLQS_MAX_STREAMS); raise RLQS_MAX_STREAMS or split the load',
    );
    expect(harness.current().service.streamCount).toBe(1);
    expect(await harness.current().metrics.render()).toMatch(/meshlimit_rlqs_streams_ended_total\{outcome="resource_exhausted"\} 1/);
  });

  it('RLQS_MAX_BUCKETS_PER_STREAM: subscribing to one bucket more is RESOURCE_EXHAUSTED', async () => {
    await start({ settings: { maxBucketsPerStream: 2 } });
    const s = open();
    s.send({ domain: 'rlqs', bucketQuotaUsages: [usage({ api: 'a' }), usage({ api: 'b' })] });
    await s.responsesAtLeast(1);
    s.send({ domain: 'rlqs', bucketQuotaUsages: [usage({ api: 'a' }), usage({ api: 'c' })] });
    const status = await s.ended;
    expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(status.details).toContain('the stream subscribed to 3 buckets; at most 2 (RLQS_MAX_BUCKETS_PER_STREAM)');
  });

  it('RLQS_MAX_BUCKET_ENTRIES: a bucket id with more entries is INVALID_ARGUMENT', async () => {
    await start({ maxBucketEntries: 2 });
    const s = open();
    s.send({ domain: 'rlqs', bucketQuotaUsages: [usage({ a: '1', b: '2', c: '3' })] });
    const status = await s.ended;
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toBe('bucket_quota_usages[0].bucket_id.bucket has 3 entries; at most 2 (RLQS_MAX_BUCKET_ENTRIES)');
  });

  it('bucket key size: a key over 256 bytes is INVALID_ARGUMENT', async () => {
    await start();
    const s = open();
    s.send({ domain: 'rlqs', bucketQuotaUsages: [usage({ ['k'.repeat(300)]: 'v' })] });
    const status = await s.ended;
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toBe('bucket_quota_usages[0].bucket_id.bucket key is 300 bytes; at most 256');
  });

  it('bucket value size: a value over MAX_DESCRIPTOR_VALUE_BYTES is INVALID_ARGUMENT', async () => {
    await start({ strings: { maxDomainBytes: 256, maxKeyBytes: 256, maxValueBytes: 16 } });
    const s = open();
    s.send({ domain: 'rlqs', bucketQuotaUsages: [usage({ api: 'x'.repeat(17) })] });
    const status = await s.ended;
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toBe('bucket_quota_usages[0].bucket_id.bucket["api"] is 17 bytes; at most 16 (MAX_DESCRIPTOR_VALUE_BYTES)');
  });

  it('RLQS_MAX_REPORTS_PER_SECOND: more reports in one second is RESOURCE_EXHAUSTED', async () => {
    await start({ settings: { maxReportsPerSecond: 3 } });
    const s = open();
    for (let i = 0; i < 5; i++) s.send({ domain: 'rlqs', bucketQuotaUsages: [usage({ api: 'orders' })] });
    const status = await s.ended;
    expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(status.details).toContain('more than 3 reports in one second; at most 3 (RLQS_MAX_REPORTS_PER_SECOND)');
  });

  it('a stream that sends no report within GRPC_STREAM_TIMEOUT_MS is DEADLINE_EXCEEDED', async () => {
    await start({ firstReportTimeoutMs: 200 });
    const s = open();
    const status = await s.ended;
    expect(status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(status.details).toContain('(GRPC_STREAM_TIMEOUT_MS)');
  });

  it('an RLQS stream is not reset by GRPC_STREAM_TIMEOUT_MS (its request never completes): it outlives the timeout while reporting', async () => {
    await start({ limits: { ...DEFAULT_TRANSPORT_LIMITS, streamTimeoutMs: 200 } });
    const s = open('e1');
    for (let i = 1; i <= 4; i++) {
      s.send({ domain: 'rlqs', bucketQuotaUsages: [usage({ api: 'orders' })] });
      await s.responsesAtLeast(i);
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(harness.current().service.streamCount).toBe(1);
    expect(await harness.current().metrics.render()).toMatch(/meshlimit_grpc_transport_actions_total\{action="stream_timeout"\} 0/);
  });

  it('the first report must name the domain; a later one may not change it', async () => {
    await start();
    const a = open();
    a.send({ domain: '', bucketQuotaUsages: [usage({ api: 'orders' })] });
    expect(await a.ended).toEqual({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'domain is required in the first report of an RLQS stream',
    });
    const b = open();
    b.send({ domain: 'rlqs', bucketQuotaUsages: [usage({ api: 'orders' })] });
    b.send({ domain: 'other', bucketQuotaUsages: [usage({ api: 'orders' })] });
    const status = await b.ended;
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toBe('domain changed from "rlqs" to "other"; open a new stream for another domain');
  });

  it('a bucket id without entries, or with an empty value, is INVALID_ARGUMENT', async () => {
    await start();
    const a = open();
    a.send({ domain: 'rlqs', bucketQuotaUsages: [usage({})] });
    expect((await a.ended).details).toBe('bucket_quota_usages[0].bucket_id.bucket is empty; a bucket id needs at least one entry');
    const b = open();
    b.send({ domain: 'rlqs', bucketQuotaUsages: [usage({ api: '' })] });
    expect((await b.ended).details).toBe('bucket_quota_usages[0].bucket_id.bucket["api"] is empty');
  });
});
