/**
 * What Redis CPU per decision can be on this machine at best: the same Redis runs a minimal
 * script doing what any counter update must (TIME, GET, SET with PX) under a pipelined load,
 * and INFO commandstats gives its time per call. meshlimit's figure is read against this floor
 * (the acceptance thresholds were set without knowing the machine).
 *
 * Runs before any meshlimit load, so the EVALSHA delta is the calibration script alone.
 */
import { Redis } from 'ioredis';
import { parseScriptStats, type RedisDeployment } from './targets.js';

export interface Calibration {
  /** Redis time per call of `TIME; GET k; SET k v PX ttl` (microseconds). */
  readonly minimalScriptUs: number;
  readonly calls: number;
}

const MINIMAL = `local t = redis.call('TIME')
local v = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], '1700000000000:42', 'PX', 60000)
return { 0, 1, 2 }`;

export async function calibrateRedis(dep: RedisDeployment, calls = 100_000): Promise<Calibration> {
  const port = dep.primaryPorts[0] as number;
  const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, enableOfflineQueue: true });
  try {
    await redis.connect();
    const sha = String(await redis.script('LOAD', MINIMAL));
    const before = parseScriptStats(String(await redis.info('commandstats')));
    const batch = 500;
    for (let done = 0; done < calls; done += batch) {
      const p = redis.pipeline();
      for (let i = 0; i < batch; i++) p.evalsha(sha, 1, `calibrate:{${i % 64}}`);
      await p.exec();
    }
    const after = parseScriptStats(String(await redis.info('commandstats')));
    const n = after.calls - before.calls;
    return { minimalScriptUs: (after.usec - before.usec) / n, calls: n };
  } finally {
    redis.disconnect();
  }
}
