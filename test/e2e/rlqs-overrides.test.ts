import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envoyOn, rlqsRules, type SimEnvoy } from '../support/rlqs-envoy.js';
import { bootService, eventually, type BootedService } from '../support/service.js';

/**
 * A tenant override set through the admin API applies to RLQS buckets as it does to RLS
 * descriptors: the bucket's next report is divided on the override's limit, not the rule's.
 */
const TOKEN = 'admin-token-for-rlqs-tests-0123456789';
const CONFIG = `domain: t\ndescriptors:\n${rlqsRules('tenant', { acme: 'minute 6000' })}`;
let svc: BootedService;
let envoy: SimEnvoy | undefined;
beforeAll(async () => {
  svc = await bootService({ files: { 't.yaml': CONFIG }, env: { ADMIN_TOKEN: TOKEN, RLQS_REASSIGN_INTERVAL_MS: '1000' } });
});
afterAll(async () => {
  envoy?.close();
  await svc?.close();
});

describe('RLQS and tenant overrides', () => {
  it('a bucket is assigned its tenant override`s share from its next report on, and the rule`s again once it is removed', async () => {
    envoy = envoyOn(svc.handle.grpcPort, 't', 1).start();
    const bucket = { tenant: 'acme' };
    envoy.request(bucket);
    await eventually(async () => envoy!.assignment(bucket)?.kind === 'token_bucket', 5_000, 20);
    const ruleRate = envoy.assignedRate(bucket);
    // The rule: 6,000 a minute (100/s) for one Envoy.
    expect(ruleRate).toBeGreaterThan(10);

    const override = { domain: 't', entries: [{ key: 'tenant', value: 'acme' }], rate_limit: { unit: 'minute', requests_per_unit: 60 } };
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const put = await fetch(`${svc.httpUrl}/v1/overrides`, { method: 'PUT', headers, body: JSON.stringify(override) });
    expect(put.status).toBe(200);
    // 60 a minute: at most 1/s, whatever the share of one Envoy.
    await eventually(async () => envoy!.assignedRate(bucket) <= 1, 10_000, 50);

    const del = await fetch(`${svc.httpUrl}/v1/overrides`, {
      method: 'DELETE',
      headers,
      body: JSON.stringify({ domain: 't', entries: override.entries }),
    });
    expect(del.status).toBe(200);
    await eventually(async () => envoy!.assignedRate(bucket) > 10, 10_000, 50);
  });
});
