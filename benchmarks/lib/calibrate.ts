/**
 * What Redis can do at best on this machine, measured on the same Redis as meshlimit, before any
 * meshlimit load:
 * - `minimalScriptUs`: a minimal script doing what any counter update must (TIME, GET, SET with
 *   PX) under a pipelined load, INFO commandstats time per call: the floor for Redis CPU per
 *   decision (the acceptance thresholds were set without knowing the machine);
 * - `returnOneUs`: the fixed price of any EVALSHA (`return 1` on one key). The issue quotes 0.74
 *   us for it on its reference machine, so `0.74 / returnOneUs` scales a figure from this
 *   machine to that one (an estimate: it assumes every Redis code path slows down alike);
 * - `roundTrip`: p50 and p99 of one PING at a time from Node (ioredis) to this Redis: what
 *   Redis adds to a request's latency before any script runs. The harness measures it from the
 *   service's CPU (phases/calibration.ts, phases/latency.ts), once per placement of Redis ({@link pingRoundTrip}).
 *
 * Runs before any meshlimit load, so the EVALSHA deltas are the calibration scripts alone.
 */
import { Redis } from 'ioredis';
import { percentile } from './stats.js';
import { parseScriptStats, type RedisDeployment } from './targets.js';

/** The reference machine: `return 1` (EVALSHA) costs 0.74 us there. */
export const REFERENCE_RETURN_ONE_US = 0.74;

export interface Calibration {
  /** Redis time per call of `TIME; GET k; SET k v PX ttl` (microseconds). */
  readonly minimalScriptUs: number;
  /** Redis time per call of `return 1` with one key (microseconds). */
  readonly returnOneUs: number;
  readonly calls: number;
  /** One PING at a time from ioredis, milliseconds (Redis where the throughput runs have it). */
  readonly roundTrip: RoundTrip;
  /** The same with Redis moved to the service's CPU (the second latency layout), when measured. */
  roundTripRedisOnServiceCpu?: RoundTrip;
}

export interface RoundTrip {
  readonly p50: number;
  readonly p99: number;
  readonly samples: number;
}

/** A connected ioredis client to 127.0.0.1:`port`, for `fn`, disconnected after it. */
async function withRedis<T>(port: number, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, enableOfflineQueue: true });
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

/** p50 and p99 (ms) of `pings` PINGs one at a time on `redis` (after 500 untimed ones). */
async function pings(redis: Redis, count: number): Promise<RoundTrip> {
  const ms: number[] = [];
  for (let i = 0; i < count + 500; i++) {
    const t0 = process.hrtime.bigint();
    await redis.ping();
    if (i >= 500) ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return { p50: percentile(ms, 50), p99: percentile(ms, 99), samples: ms.length };
}

/** p50 and p99 (ms) of `count` PINGs one at a time from this process to 127.0.0.1:`port`. */
export function pingRoundTrip(port: number, count = 5_000): Promise<RoundTrip> {
  return withRedis(port, (redis) => pings(redis, count));
}

const MINIMAL = `local t = redis.call('TIME')
local v = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], '1700000000000:42', 'PX', 60000)
return { 0, 1, 2 }`;
const RETURN_ONE = 'return 1';

async function scriptUs(redis: Redis, lua: string, calls: number): Promise<{ us: number; calls: number }> {
  const sha = String(await redis.script('LOAD', lua));
  const before = parseScriptStats(String(await redis.info('commandstats')));
  const batch = 500;
  for (let done = 0; done < calls; done += batch) {
    const p = redis.pipeline();
    for (let i = 0; i < batch; i++) p.evalsha(sha, 1, `calibrate:{${i % 64}}`);
    await p.exec();
  }
  const after = parseScriptStats(String(await redis.info('commandstats')));
  const n = after.calls - before.calls;
  return { us: (after.usec - before.usec) / n, calls: n };
}

export function calibrateRedis(dep: RedisDeployment, calls = 100_000, pingCount = 5_000): Promise<Calibration> {
  return withRedis(dep.primaryPorts[0] as number, async (redis) => {
    const minimal = await scriptUs(redis, MINIMAL, calls);
    const one = await scriptUs(redis, RETURN_ONE, calls);
    return { minimalScriptUs: minimal.us, returnOneUs: one.us, calls: minimal.calls, roundTrip: await pings(redis, pingCount) };
  });
}
