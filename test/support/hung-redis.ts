import { startRedis, type RedisInstance } from './redis.js';
import { bootService, metricValue, type BootedService } from './service.js';

/**
 * meshlimit in process on a redis-server of its own that a test can hang: SIGSTOP keeps the
 * server's sockets open and answers nothing, like a stalled VM, so the connection still counts as
 * up and only the breaker's silence detection can tell (BREAKER_SILENCE_MS).
 */
export interface HungRedisService {
  readonly redis: RedisInstance;
  readonly svc: BootedService;
  /** One ShouldRateLimit call of `domain` with `descriptor`, as the harness was started with. */
  ask(): Promise<unknown>;
  /**
   * Stops Redis and keeps asking until the breaker reports open; resolves with the milliseconds
   * that took, or undefined when it did not open within `withinMs`.
   */
  hangUntilBreakerOpens(withinMs?: number): Promise<number | undefined>;
  /** SIGCONT (idempotent). */
  resume(): void;
  close(): Promise<void>;
}

export interface HungRedisOptions {
  readonly files: Readonly<Record<string, string>>;
  /** What ask() sends. */
  readonly domain: string;
  readonly descriptor: { readonly key: string; readonly value: string };
  /** Settings on top of BACKEND_TYPE=redis and REDIS_URL (the breaker's timings, the policy). */
  readonly env: Readonly<Record<string, string>>;
}

export async function startHungRedisService(o: HungRedisOptions): Promise<HungRedisService> {
  const redis = await startRedis();
  const svc = await bootService({
    files: o.files,
    env: { BACKEND_TYPE: 'redis', REDIS_URL: `127.0.0.1:${redis.port}`, ...o.env },
  }).catch(async (err: unknown) => {
    await redis.stop();
    throw err;
  });
  const ask = (): Promise<unknown> =>
    svc.client.shouldRateLimit({ domain: o.domain, descriptors: [{ entries: [o.descriptor] }] }, { deadlineMs: 5_000 });
  const breakerOpen = async (): Promise<boolean> => (await metricValue(svc.httpUrl, 'meshlimit_breaker_state{state="open"}')) === 1;
  const resume = (): void => void process.kill(redis.pid, 'SIGCONT');
  return {
    redis,
    svc,
    ask,
    async hangUntilBreakerOpens(withinMs = 5_000) {
      process.kill(redis.pid, 'SIGSTOP');
      const stoppedAt = performance.now();
      while (performance.now() - stoppedAt < withinMs) {
        await ask().catch(() => undefined);
        if (await breakerOpen()) return performance.now() - stoppedAt;
      }
      return undefined;
    },
    resume,
    async close() {
      resume();
      await svc.close();
      await redis.stop();
    },
  };
}
