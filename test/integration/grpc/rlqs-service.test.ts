/**
 * The RLQS stream service on a real gRPC server: what it pushes (token buckets in whole seconds,
 * blanket rules, abandon, TTL 0 at shutdown), what its bounds answer (each with the setting it
 * names), and what the failure policy answers while the quota store is unavailable.
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { RedisQuotaStore } from '../../../src/quota/index.js';
import { getFreePort } from '../../support/ports.js';
import { harnessPerTest, usage } from './rlqs-harness.js';

const ORDERS = { api: 'orders' };
const harness = harnessPerTest();
const { start, open } = harness;

describe('RLQS assignments', () => {
  it('a report of a rule bucket is answered with a token bucket: whole-second fill interval and TTL, tokens_per_fill >= 1', async () => {
    await start();
    const s = open('e1');
    s.send({ domain: 'rlqs', bucketQuotaUsages: [usage(ORDERS, 10, 0, 1)] });
    const [r] = await s.responsesAtLeast(1);
    const a = r!.bucketAction[0]!;
    expect(a.bucketId.bucket).toEqual(ORDERS);
    const q = a.quotaAssignmentAction!;
    expect(q.assignmentTimeToLive!.seconds).toBeGreaterThanOrEqual(1);
    const tb = q.rateLimitStrategy!.tokenBucket!;
    expect(tb.fillInterval!.seconds).toBeGreaterThanOrEqual(1);
    expect(tb.tokensPerFill!.value).toBeGreaterThanOrEqual(1);
    expect(tb.maxTokens).toBeGreaterThanOrEqual(1);
    expect(q.rateLimitStrategy!.blanketRule).toBeUndefined();
  });

  it('a bucket that matches no rule gets RLQS_UNMATCHED_BUCKET (ALLOW_ALL by default, DENY_ALL when set)', async () => {
    await start();
    const s = open();
    s.send({ domain: 'rlqs', bucketQuotaUsages: [usage({ api: 'other' })] });
    const [r] = await s.responsesAtLeast(1);
    expect(r!.bucketAction[0]!.quotaAssignmentAction!.rateLimitStrategy).toEqual({ blanketRule: 'ALLOW_ALL' });
    await harness.current().close();
    await start({ unmatched: 'deny_all' });
    const d = open();
    d.send({ domain: 'rlqs', bucketQuotaUsages: [usage({ api: 'other' })] });
    const [rd] = await d.responsesAtLeast(1);
    expect(rd!.bucketAction[0]!.quotaAssignmentAction!.rateLimitStrategy).toEqual({ blanketRule: 'DENY_ALL' });
  });

  it('bucket keys map to descriptor entries sorted by key, whatever order the map arrives in', async () => {
    await start();
    const s = open();
    // {api: orders} alone matches; a second key makes a two-entry descriptor that does not.
    s.send({ domain: 'rlqs', bucketQuotaUsages: [usage({ zone: 'a', api: 'orders' })] });
    const [r] = await s.responsesAtLeast(1);
    expect(r!.bucketAction[0]!.quotaAssignmentAction!.rateLimitStrategy).toEqual({ blanketRule: 'ALLOW_ALL' });
  });

  it('RLQS_REASSIGN_INTERVAL_MS: an Envoy that stops reporting is still pushed assignments, and its share shrinks when another Envoy gets busy', async () => {
    await start({ settings: { reassignIntervalMs: 200 } });
    const quiet = open('quiet');
    quiet.send({ domain: 'rlqs', bucketQuotaUsages: [usage(ORDERS, 80, 0, 1)] });
    await quiet.responsesAtLeast(1);
    const rate = (r: (typeof quiet.responses)[number]): number => {
      const tb = r.bucketAction[0]!.quotaAssignmentAction!.rateLimitStrategy!.tokenBucket!;
      return tb.tokensPerFill!.value / tb.fillInterval!.seconds;
    };
    const first = rate(quiet.responses[0]!);
    const busy = open('busy');
    for (let i = 0; i < 3; i++) {
      busy.send({ domain: 'rlqs', bucketQuotaUsages: [usage(ORDERS, 90, 400, 1)] });
      await busy.responsesAtLeast(i + 1);
    }
    // The quiet stream sent one report; what follows was pushed by re-evaluation.
    const pushed = await quiet.responsesAtLeast(3);
    expect(pushed.length).toBeGreaterThanOrEqual(3);
    await new Promise((r) => setTimeout(r, 500));
    expect(rate(quiet.responses.at(-1)!)).toBeLessThan(first);
  });

  it('a bucket that reports no request for RLQS_ABANDON_AFTER_S is abandoned', async () => {
    await start({ settings: { abandonAfterSec: 1, reassignIntervalMs: 200 } });
    const s = open('e1');
    s.send({ domain: 'rlqs', bucketQuotaUsages: [usage(ORDERS, 5)] });
    await s.responsesAtLeast(1);
    s.send({ domain: 'rlqs', bucketQuotaUsages: [usage(ORDERS, 0)] });
    const rs = await new Promise<typeof s.responses>((resolve) => {
      const t = setInterval(() => {
        if (s.responses.some((r) => r.bucketAction.some((a) => a.abandonAction))) {
          clearInterval(t);
          resolve(s.responses);
        }
      }, 50);
    });
    const abandon = rs.flatMap((r) => r.bucketAction).find((a) => a.abandonAction);
    expect(abandon!.bucketId.bucket).toEqual(ORDERS);
    expect(harness.current().service.streamCount).toBe(1);
  });

  it('shutdown pushes every assignment again with TTL 0, then ends the stream with OK', async () => {
    const harness = await start();
    const s = open('e1');
    s.send({ domain: 'rlqs', bucketQuotaUsages: [usage(ORDERS, 5), usage({ api: 'other' })] });
    await s.responsesAtLeast(1);
    await harness.close();
    const status = await s.ended;
    expect(status.code).toBe(grpc.status.OK);
    const last = s.responses.at(-1)!;
    expect(last.bucketAction).toHaveLength(2);
    for (const a of last.bucketAction) expect(a.quotaAssignmentAction!.assignmentTimeToLive).toEqual({ seconds: 0, nanos: 0 });
    expect(last.bucketAction[0]!.quotaAssignmentAction!.rateLimitStrategy!.tokenBucket).toBeDefined();
  });
});

describe('RLQS failure policy (quota store unavailable)', () => {
  it.each([
    ['allow', { blanketRule: 'ALLOW_ALL' }],
    ['deny', { blanketRule: 'DENY_ALL' }],
  ] as const)('%s -> %j', async (policy, strategy) => {
    await start({ policy, storeReady: () => false });
    const s = open('e1');
    s.send({ domain: 'rlqs', bucketQuotaUsages: [usage(ORDERS)] });
    const [r] = await s.responsesAtLeast(1);
    expect(r!.bucketAction[0]!.quotaAssignmentAction!.rateLimitStrategy).toEqual(strategy);
  });

  it('local -> a token bucket of the per-replica share (500 / 2 replicas) split among this process`s Envoys, refilled per window', async () => {
    // A real Redis quota store on a port nothing listens on: its reports fail (transient).
    const store = new RedisQuotaStore({ redis: { type: 'single', nodes: [{ host: '127.0.0.1', port: await getFreePort() }] } });
    await start({ policy: 'local', store });
    const [a, b] = [open('e1'), open('e2')];
    a.send({ domain: 'rlqs', bucketQuotaUsages: [usage(ORDERS)] });
    await a.responsesAtLeast(1);
    b.send({ domain: 'rlqs', bucketQuotaUsages: [usage(ORDERS)] });
    const [rb] = await b.responsesAtLeast(1);
    const tb = rb!.bucketAction[0]!.quotaAssignmentAction!.rateLimitStrategy!.tokenBucket!;
    expect(tb).toMatchObject({ maxTokens: 125, tokensPerFill: { value: 125 }, fillInterval: { seconds: 5 } });
    expect(await harness.current().metrics.render()).toMatch(
      /meshlimit_rlqs_reassignment_duration_seconds_count\{outcome="failure_policy"\} [1-9]/,
    );
  });
});
