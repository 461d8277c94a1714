import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { bootService, type BootedService } from '../support/service.js';
import { fixture } from '../unit/config/helpers.js';

/**
 * What broke: envoyproxy/ratelimit's main example (examples/ratelimit/config/example.yaml) did
 * not load: `descriptors[5].metadata: unknown key 'metadata'`. Upstream added descriptor
 * `metadata` (#1112, #1175), returned to Envoy in the response's dynamic metadata under
 * RESPONSE_DYNAMIC_METADATA=true; Envoy AI Gateway and upstream's own proxy.yaml route by it
 * (`%DYNAMIC_METADATA(envoy.filters.http.ratelimit:metadata:service_with_quota:name)%`).
 */
let svc: BootedService | undefined;
afterAll(async () => svc?.close());

describe('upstream example.yaml with descriptor metadata', () => {
  it('loads unchanged and returns the passed quota descriptor metadata over gRPC and /json', async () => {
    const example = readFileSync(fixture('upstream_examples', 'example.yaml'), 'utf8');
    svc = await bootService({ files: { 'example.yaml': example }, env: { RESPONSE_DYNAMIC_METADATA: 'true' } });
    const request = {
      domain: 'rl',
      descriptors: [
        { entries: [{ key: 'service', value: 'service_1' }], hitsAddend: 0 },
        { entries: [{ key: 'service', value: 'service_2' }], hitsAddend: 0 },
      ],
    };
    const res = await svc.client.shouldRateLimit(request);
    expect(res.overallCode).toBe('OK');
    const fields = res.dynamicMetadata!.fields;
    expect(fields['domain']).toEqual({ stringValue: 'rl' });
    expect(fields['metadata']).toEqual({
      structValue: { fields: { service_with_quota: { structValue: { fields: { name: { stringValue: 'service_1' } } } } } },
    });
    const json = await fetch(`${svc.httpUrl}/json`, { method: 'POST', body: JSON.stringify(request) });
    expect(json.status).toBe(200);
    expect(((await json.json()) as { dynamicMetadata: unknown }).dynamicMetadata).toEqual({
      domain: 'rl',
      descriptors: [
        { entries: ['service=service_1'], hitsAddend: 0 },
        { entries: ['service=service_2'], hitsAddend: 0 },
      ],
      metadata: { service_with_quota: { name: 'service_1' } },
    });
  });
});
