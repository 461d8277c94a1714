import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRlsClient } from '../../src/client/rls-client.js';
import type { TrackedChild } from '../support/child.js';
import { redisCommand } from '../support/redis-admin.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { startRedisSentinel, type RedisSentinelSetup } from '../support/redis-sentinel.js';
import { spawnService } from '../support/service-process.js';

/**
 * The one path from the environment to a Redis connection, end to end: the real service process
 * (`src/main.ts`), configured only by environment variables as a user would, against real
 * redis-servers that require what each setting form must deliver. Each case answers a decision
 * whose counter is then found in that Redis, so a process that fell back to anything else fails.
 *
 * Credentials hold `:` and `@` on purpose: they broke when settings were parsed into fields,
 * rebuilt into strings and parsed again (see test/regressions/).
 */
// A day's window: the counters the tests count with DBSIZE must not expire between two of them
// (with a minute's, a minute ending between two service start-ups lost one: seen in CI).
const CONFIG = 'domain: wiring\ndescriptors:\n  - key: k\n    rate_limit: { unit: day, requests_per_unit: 10 }\n';
const PASSWORD = 'p:a@ss';
const ACL_PASSWORD = 'acl:s@cret';
const DATA_PASSWORD = 'data@pw';
const SENTINEL_PASSWORD = 'sentinel:pw@2';

let configDir: string;
let plain: RedisInstance;
let protectedRedis: RedisInstance;
let aclRedis: RedisInstance;
let sentinel: RedisSentinelSetup;
let cluster: RedisCluster;
const children = new Set<TrackedChild>();

beforeAll(async () => {
  configDir = mkdtempSync(path.join(tmpdir(), 'meshlimit-wiring-'));
  writeFileSync(path.join(configDir, 'wiring.yaml'), CONFIG);
  plain = await startRedis({ args: ['--bind', '127.0.0.1', '::1'] });
  protectedRedis = await startRedis({ password: PASSWORD });
  // An ACL user besides the default one (which keeps its own password for the harness).
  aclRedis = await startRedis({ password: 'admin-only', args: ['--user', 'app', 'on', `>${ACL_PASSWORD}`, '~*', '&*', '+@all'] });
  sentinel = await startRedisSentinel({ password: DATA_PASSWORD, sentinelPassword: SENTINEL_PASSWORD });
  cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 0 });
}, 120_000);

afterAll(async () => {
  for (const c of children) c.child.kill('SIGKILL');
  await Promise.allSettled([plain?.stop(), protectedRedis?.stop(), aclRedis?.stop(), sentinel?.stop(), cluster?.stop()]);
  rmSync(configDir, { recursive: true, force: true });
});

/** Starts `src/main.ts` with `env`, asks one decision for descriptor k=`value`, stops it; returns limit_remaining. */
async function decideWith(env: Record<string, string>, value: string): Promise<number> {
  const what = JSON.stringify({ ...env, REDIS_AUTH: undefined, REDIS_SENTINEL_AUTH: undefined });
  const svc = await spawnService({ CONFIG_DIR: configDir, BACKEND_TYPE: 'redis', ...env }, { what });
  children.add(svc.proc);
  const client = createRlsClient(svc.grpcAddress);
  try {
    const res = await client.shouldRateLimit({ domain: 'wiring', descriptors: [{ entries: [{ key: 'k', value }] }] });
    expect(res.overallCode, svc.proc.output()).toBe('OK');
    return res.statuses[0]!.limitRemaining;
  } finally {
    client.close();
    await svc.proc.stop();
    children.delete(svc.proc);
  }
}

describe('REDIS_URL and credentials reach Redis as given', () => {
  it('an IPv6 literal: REDIS_URL=[::1]:PORT', async () => {
    expect(await decideWith({ REDIS_URL: `[::1]:${plain.port}` }, 'ipv6')).toBe(9);
    expect(await plain.client().dbsize()).toBe(1);
  });

  it('a password holding ":" and "@", percent-encoded in REDIS_URL', async () => {
    expect(await decideWith({ REDIS_URL: `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${protectedRedis.port}` }, 'url')).toBe(9);
    expect(await protectedRedis.client().dbsize()).toBe(1);
  });

  it('the same password in REDIS_AUTH (default:<password>, as a colon requires)', async () => {
    expect(await decideWith({ REDIS_URL: `127.0.0.1:${protectedRedis.port}`, REDIS_AUTH: `default:${PASSWORD}` }, 'auth')).toBe(9);
    expect(await protectedRedis.client().dbsize()).toBe(2);
  });

  it('an ACL user, in REDIS_URL and in REDIS_AUTH', async () => {
    expect(await decideWith({ REDIS_URL: `redis://app:${encodeURIComponent(ACL_PASSWORD)}@127.0.0.1:${aclRedis.port}` }, 'acl-url')).toBe(
      9,
    );
    expect(await decideWith({ REDIS_URL: `127.0.0.1:${aclRedis.port}`, REDIS_AUTH: `app:${ACL_PASSWORD}` }, 'acl-auth')).toBe(9);
    expect(await aclRedis.client().dbsize()).toBe(2);
  });

  it('Sentinel with its own auth: REDIS_AUTH for the data nodes, REDIS_SENTINEL_AUTH for the sentinels', async () => {
    const env = {
      REDIS_TYPE: 'sentinel',
      REDIS_URL: sentinel.redisUrl,
      REDIS_AUTH: DATA_PASSWORD,
      REDIS_SENTINEL_AUTH: `default:${SENTINEL_PASSWORD}`,
    };
    expect(await decideWith(env, 'sentinel')).toBe(9);
    expect(await sentinel.command(await sentinel.primaryPort(), 'DBSIZE')).toBe(1);
  });

  it('Redis Cluster from its seed list', async () => {
    expect(await decideWith({ REDIS_TYPE: 'cluster', REDIS_URL: cluster.seeds }, 'cluster')).toBe(9);
    const sizes = await Promise.all(cluster.primaries().map(async (n) => Number(await redisCommand(n.port, ['DBSIZE']))));
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(1);
  });
});
