import { afterAll, describe, expect, it } from 'vitest';
import { bootService, type BootedService } from '../support/service.js';

/**
 * What broke: a descriptor with no entries made the whole request INVALID_ARGUMENT. Upstream
 * looks it up like any other (src/config/config_impl.go GetLimit): nothing matches, so it is
 * answered OK without a limit, and the other descriptors are decided as usual.
 */
const CONFIG = 'domain: empty\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 5 }\n';
let svc: BootedService | undefined;
afterAll(async () => svc?.close());

describe('a descriptor without entries', () => {
  it('is OK without a limit, over gRPC and /json', async () => {
    svc = await bootService({ files: { 'empty.yaml': CONFIG } });
    const request = { domain: 'empty', descriptors: [{ entries: [] }, { entries: [{ key: 'k', value: 'v' }] }] };
    const res = await svc.client.shouldRateLimit(request);
    expect(res.overallCode).toBe('OK');
    expect(res.statuses[0]).toMatchObject({ code: 'OK', currentLimit: null, limitRemaining: 0 });
    expect(res.statuses[1]).toMatchObject({ code: 'OK', limitRemaining: 4 });
    const json = await fetch(`${svc.httpUrl}/json`, { method: 'POST', body: JSON.stringify(request) });
    expect(json.status).toBe(200);
  });
});
