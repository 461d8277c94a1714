import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SettingsError } from '../../src/errors.js';
import { loadSettings } from '../../src/settings/index.js';
import { bootService, type BootedService } from '../support/service.js';

/**
 * SOFT_LIMIT_HEADER: an admitted answer says, through response_headers_to_add, that a descriptor
 * has used more than SOFT_LIMIT_SHARE of its limit (over gRPC and /json alike); a denied answer
 * and an answer under the share do not carry it.
 */
const T = 1_800_000_000_000;
const CONFIG = `domain: edge
descriptors:
  - key: plan
    rate_limit: { unit: minute, requests_per_unit: 10 }
  - key: bucket
    rate_limit: { algorithm: token_bucket, unit: second, requests_per_unit: 1, burst: 4 }
`;
let svc: BootedService;
beforeAll(async () => {
  svc = await bootService({
    files: { 'edge.yaml': CONFIG },
    now: () => T,
    env: { SOFT_LIMIT_HEADER: 'x-ratelimit-soft', SOFT_LIMIT_SHARE: '0.7' },
  });
});
afterAll(async () => svc?.close());

const soft = async (entries: { key: string; value: string }[]) => {
  const r = await svc.client.shouldRateLimit({ domain: 'edge', descriptors: [{ entries }] });
  return [r.overallCode, r.responseHeadersToAdd.find((h) => h.key === 'x-ratelimit-soft')?.value] as const;
};

describe('SOFT_LIMIT_HEADER', () => {
  it('is sent past the share of a window, with the share used in percent, and not on a denial', async () => {
    const seen = [];
    for (let i = 0; i < 11; i++) seen.push(await soft([{ key: 'plan', value: 'p' }]));
    expect(seen).toEqual([
      ...Array.from({ length: 7 }, () => ['OK', undefined]),
      ['OK', '80'],
      ['OK', '90'],
      ['OK', '100'],
      ['OVER_LIMIT', undefined],
    ]);
  });

  it('counts a token bucket against its burst, and /json carries it too', async () => {
    expect(await soft([{ key: 'bucket', value: 'b' }])).toEqual(['OK', undefined]); // 1 of 4
    expect(await soft([{ key: 'bucket', value: 'b' }])).toEqual(['OK', undefined]); // 2 of 4
    expect(await soft([{ key: 'bucket', value: 'b' }])).toEqual(['OK', '75']);
    const res = await fetch(`${svc.httpUrl}/json`, {
      method: 'POST',
      body: JSON.stringify({ domain: 'edge', descriptors: [{ entries: [{ key: 'bucket', value: 'b' }] }] }),
    });
    expect(((await res.json()) as { responseHeadersToAdd: unknown[] }).responseHeadersToAdd).toEqual([
      { key: 'x-ratelimit-soft', value: '100' },
    ]);
  });

  it('refuses a share outside (0, 1) and a bad header name, naming the setting', () => {
    for (const bad of ['0', '1', '1.5', 'high', '-0.2'])
      expect(() => loadSettings({ SOFT_LIMIT_HEADER: 'x-soft', SOFT_LIMIT_SHARE: bad })).toThrow(SettingsError);
    expect(() => loadSettings({ SOFT_LIMIT_SHARE: '2' })).toThrow(/SOFT_LIMIT_SHARE/);
    expect(() => loadSettings({ SOFT_LIMIT_HEADER: 'x soft' })).toThrow(/SOFT_LIMIT_HEADER/);
    expect(loadSettings({ SOFT_LIMIT_HEADER: 'x-soft' }).softLimit).toEqual({ header: 'x-soft', share: 0.8 });
    expect(loadSettings({}).softLimit).toBeUndefined();
  });
});
