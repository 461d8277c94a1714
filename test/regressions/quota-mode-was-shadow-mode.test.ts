import { afterAll, describe, expect, it } from 'vitest';
import { bootService, type BootedService } from '../support/service.js';

/**
 * What broke: `quota_mode: true` behaved like `shadow_mode`: every quota descriptor answered OK
 * however exhausted, so Envoy (AI Gateway's QuotaPolicy, upstream's quota routing) could neither
 * see which quota was spent nor get OVER_LIMIT once all were. Upstream (#1045, #1059): an
 * exhausted quota descriptor keeps its OVER_LIMIT status, and the request is OVER_LIMIT only when
 * every quota descriptor is (or a normal descriptor is over).
 */
const CONFIG = `
domain: quota
descriptors:
  - key: service
    value: service_1
    quota_mode: true
    rate_limit: { unit: hour, requests_per_unit: 1 }
  - key: service
    value: service_2
    quota_mode: true
    rate_limit: { unit: hour, requests_per_unit: 2 }
`;
let svc: BootedService | undefined;
afterAll(async () => svc?.close());

describe('quota_mode', () => {
  it('keeps per-descriptor OVER_LIMIT statuses and answers OVER_LIMIT once every quota is exhausted', async () => {
    const t0 = 1_700_002_800_000; // an hour boundary
    svc = await bootService({ files: { 'quota.yaml': CONFIG }, now: () => t0 });
    const ask = async (): Promise<string> => {
      const r = await svc!.client.shouldRateLimit({
        domain: 'quota',
        descriptors: [{ entries: [{ key: 'service', value: 'service_1' }] }, { entries: [{ key: 'service', value: 'service_2' }] }],
      });
      return `${r.overallCode} ${r.statuses.map((s) => s.code).join(',')}`;
    };
    expect(await ask()).toBe('OK OK,OK');
    expect(await ask()).toBe('OK OVER_LIMIT,OK');
    expect(await ask()).toBe('OVER_LIMIT OVER_LIMIT,OVER_LIMIT');
  });
});
