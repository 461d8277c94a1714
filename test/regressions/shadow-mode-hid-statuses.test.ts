import { afterAll, describe, expect, it } from 'vitest';
import { bootService, type BootedService } from '../support/service.js';

/**
 * What broke: with SHADOW_MODE=true every descriptor status was turned to OK too, so the
 * response no longer said which descriptor would have been limited. Upstream changes only the
 * overall code (src/service/ratelimit.go; TestServiceGlobalShadowMode): statuses keep OVER_LIMIT.
 */
const CONFIG = 'domain: shadow\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 1 }\n';
let svc: BootedService | undefined;
afterAll(async () => svc?.close());

describe('SHADOW_MODE', () => {
  it('answers OK overall and keeps the over-limit status, over gRPC and /json', async () => {
    const t0 = 1_700_002_800_000;
    svc = await bootService({ files: { 'shadow.yaml': CONFIG }, env: { SHADOW_MODE: 'true' }, now: () => t0 });
    const request = {
      domain: 'shadow',
      descriptors: [{ entries: [{ key: 'k', value: 'v' }] }, { entries: [{ key: 'other', value: 'x' }] }],
    };
    await svc.client.shouldRateLimit(request);
    const res = await svc.client.shouldRateLimit(request);
    expect(res.overallCode).toBe('OK');
    expect(res.statuses.map((s) => s.code)).toEqual(['OVER_LIMIT', 'OK']);
    const json = await fetch(`${svc.httpUrl}/json`, { method: 'POST', body: JSON.stringify(request) });
    expect(json.status).toBe(200);
    const body = (await json.json()) as { overallCode: string; statuses: { code: string }[] };
    expect(body.overallCode).toBe('OK');
    expect(body.statuses.map((s) => s.code)).toEqual(['OVER_LIMIT', 'OK']);
  });
});
