import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BODY_LIMIT_BYTES } from '../../src/server/http/app.js';
import { bootService, metricValue, type BootedService } from '../support/service.js';

/**
 * What broke: `POST /json` requests that failed before the JSON adapter saw them (an empty body,
 * a body that is not JSON, a body over the size limit) were missing from
 * `meshlimit_requests_total`, so the request rate and error ratio of an HTTP client were wrong
 * exactly when it was sending garbage. Every `/json` request is now counted, as every gRPC call
 * is: these as `invalid_argument`.
 */
let s: BootedService;
beforeAll(async () => {
  s = await bootService({
    files: { 'r.yaml': 'domain: r\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 1 }\n' },
  });
});
afterAll(async () => {
  await s?.close();
});

const post = async (body: string): Promise<number> => (await fetch(`${s.httpUrl}/json`, { method: 'POST', body })).status;
const total = (outcome: string): Promise<number> => metricValue(s.httpUrl, `meshlimit_requests_total{outcome="${outcome}"}`);

describe('POST /json', () => {
  it('counts every request in meshlimit_requests_total, those refused before decoding included', async () => {
    const valid = '{"domain":"r","descriptors":[{"entries":[{"key":"k","value":"v"}]}]}';
    expect(await post(valid)).toBe(200);
    expect(await post(valid)).toBe(429);
    expect(await post('{"domain":""}')).toBe(400); // refused by the JSON adapter (was counted)
    expect(await post('')).toBe(400); // empty
    expect(await post('{')).toBe(400); // not JSON
    expect(await post(`"${'x'.repeat(BODY_LIMIT_BYTES)}"`)).toBe(413); // too large
    expect(await total('ok')).toBe(1);
    expect(await total('over_limit')).toBe(1);
    expect(await total('invalid_argument')).toBe(4);
  });
});
