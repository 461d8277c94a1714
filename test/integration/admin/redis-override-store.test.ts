import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisOverrideStore } from '../../../src/admin/override-store.js';
import { InvalidRequestError } from '../../../src/errors.js';
import { startRedis, type RedisInstance } from '../../support/redis.js';

/** The Redis override store's bounds on a real Redis: OVERRIDES_MAX and OVERRIDES_AUDIT_MAX, enforced by lua/override-change.lua. */
const LIMIT = { algorithm: 'fixed_window', unit: 'minute', unitMultiplier: 1, requestsPerUnit: 5, burst: 5 } as const;
const entries = (v: string) => [{ key: 'company_id', value: v }];

let redis: RedisInstance;
beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => redis?.stop());

describe('RedisOverrideStore', () => {
  it('refuses one override more than OVERRIDES_MAX, keeps OVERRIDES_AUDIT_MAX audit entries, and a second store sees the changes', async () => {
    const client = redis.client();
    const store = new RedisOverrideStore(client, 'bounds_', { max: 2, auditMax: 3, pollMs: 50 });
    const other = new RedisOverrideStore(client, 'bounds_', { max: 2, auditMax: 3, pollMs: 50 });
    try {
      await store.set({ domain: 'edge', entries: entries('a'), limit: LIMIT }, 'me');
      await store.set({ domain: 'edge', entries: entries('b'), limit: LIMIT }, 'me');
      const refused = store.set({ domain: 'edge', entries: entries('c'), limit: LIMIT }, 'me');
      await expect(refused).rejects.toThrow(InvalidRequestError);
      const changed = await store.set({ domain: 'edge', entries: entries('a'), limit: { ...LIMIT, requestsPerUnit: 9 } }, 'me');
      expect(changed).toMatchObject({ old: { requestsPerUnit: 5 }, new: { requestsPerUnit: 9 } });
      await store.remove('edge', entries('b'), 'me');
      expect(await client.llen('bounds_{meshlimit-admin}:overrides:audit')).toBe(3);
      expect((await store.audit()).map((e) => e.action)).toEqual(['remove', 'set', 'set']);
      await other.poll();
      expect(other.current().size).toBe(1);
      expect(other.current().lookup('edge', entries('a'))?.requestsPerUnit).toBe(9);
      // A foreign value in the hash is skipped, not fatal.
      await client.hset('bounds_{meshlimit-admin}:overrides', 'junk', 'not json');
      await client.incr('bounds_{meshlimit-admin}:overrides:version');
      await other.poll();
      expect(other.current().size).toBe(1);
    } finally {
      await store.close();
      await other.close();
    }
  });
});
