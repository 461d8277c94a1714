import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRlsClient } from '../../src/client/rls-client.js';
import { spawnService } from '../support/service-process.js';
import { redisCommand } from '../support/redis-admin.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { bootService } from '../support/service.js';
import { createTestPki, type TestPki } from '../support/tls-pki.js';

/**
 * The service answering decisions with its counters in Redis over mutual TLS, configured only
 * by envoyproxy/ratelimit's variables, as Envoy Gateway starts it (REDIS_TLS,
 * REDIS_TLS_CLIENT_CERT, REDIS_TLS_CLIENT_KEY; plus REDIS_TLS_CACERT for this run's throwaway
 * CA): booted in-process against a TLS-only standalone Redis and a TLS-only cluster (TLS cluster
 * bus too), and once as the real process (`src/main.ts`, which also logs its redacted settings).
 * Each decision's counter is then found in that Redis.
 */
const CONFIG = 'domain: tls\ndescriptors:\n  - key: k\n    rate_limit: { unit: minute, requests_per_unit: 10 }\n';

let pki: TestPki;
let redis: RedisInstance;
let cluster: RedisCluster;

beforeAll(async () => {
  pki = createTestPki();
  redis = await startRedis({ tls: pki.serverTls() });
  cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 0, tls: pki.serverTls() });
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([redis?.stop(), cluster?.stop()]);
  pki?.remove();
});

const mtls = (): Record<string, string> => ({
  BACKEND_TYPE: 'redis',
  REDIS_TLS: 'true',
  REDIS_TLS_CACERT: pki.ca,
  REDIS_TLS_CLIENT_CERT: pki.client.cert,
  REDIS_TLS_CLIENT_KEY: pki.client.key,
});

/** Boots the service with `env`, asks for descriptor k=`value` twice, returns the two limit_remaining values. */
async function decideTwice(env: Record<string, string>, value: string): Promise<number[]> {
  const svc = await bootService({ env, files: { 'tls.yaml': CONFIG } });
  try {
    const remaining: number[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await svc.client.shouldRateLimit({ domain: 'tls', descriptors: [{ entries: [{ key: 'k', value }] }] });
      expect(res.overallCode).toBe('OK');
      remaining.push(res.statuses[0]!.limitRemaining);
    }
    return remaining;
  } finally {
    await svc.close();
  }
}

describe('the service over mutual TLS', () => {
  it('standalone Redis', async () => {
    expect(await decideTwice({ ...mtls(), REDIS_URL: `127.0.0.1:${redis.port}` }, 'standalone')).toEqual([9, 8]);
    expect(await redisCommand(redis.port, ['DBSIZE'])).toBe(1);
  });

  it('Redis Cluster, its seeds as REDIS_URL', async () => {
    expect(await decideTwice({ ...mtls(), REDIS_TYPE: 'cluster', REDIS_URL: cluster.seeds }, 'cluster')).toEqual([9, 8]);
    const sizes = await Promise.all(cluster.primaries().map(async (n) => Number(await redisCommand(n.port, ['DBSIZE']))));
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(1);
  });

  it('the real process, configured by environment only', async () => {
    const configDir = path.join(pki.dir, 'config');
    mkdirSync(configDir, { recursive: true });
    writeFileSync(path.join(configDir, 'tls.yaml'), CONFIG);
    const { proc, grpcAddress } = await spawnService(
      { CONFIG_DIR: configDir, LOG_LEVEL: 'debug', LOG_FORMAT: 'json', ...mtls(), REDIS_URL: `rediss://localhost:${redis.port}` },
      { what: 'Redis over TLS' },
    );
    const client = createRlsClient(grpcAddress);
    try {
      const res = await client.shouldRateLimit({ domain: 'tls', descriptors: [{ entries: [{ key: 'k', value: 'process' }] }] });
      expect(res.overallCode).toBe('OK');
      expect(res.statuses[0]!.limitRemaining).toBe(9);
      expect(await redisCommand(redis.port, ['DBSIZE'])).toBe(2);
      // The settings line (at debug) shows where the files came from, never the key.
      const output = proc.output();
      expect(output).toContain(pki.client.key);
      expect(output).not.toContain('PRIVATE KEY');
    } finally {
      client.close();
      await proc.stop();
    }
  });
});
