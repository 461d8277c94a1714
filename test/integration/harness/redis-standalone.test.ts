/**
 * Smoke tests of the standalone harness (`startRedis`) against real `redis-server` processes: it
 * runs on the shared process layer, so it gets the same ports, readiness check and cleanup as the
 * cluster and sentinel set-ups.
 */
import { existsSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { harnessTls, parseInfo, redisCommand } from '../../support/redis-admin.js';
import { startRedis, type RedisInstance } from '../../support/redis.js';
import { createTestPki } from '../../support/tls-pki.js';

const isGone = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
};

describe('startRedis', () => {
  const started: RedisInstance[] = [];
  const start = async (...args: Parameters<typeof startRedis>): Promise<RedisInstance> => {
    const r = await startRedis(...args);
    started.push(r);
    return r;
  };
  afterEach(async () => {
    for (const r of started.splice(0)) await r.stop();
  });

  it('answers on a free port below the ephemeral range, as the process it reports, with nothing persisted', async () => {
    const r = await start({ args: ['--maxmemory', '10mb'] });
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    expect(r.port).toBeGreaterThanOrEqual(10_000);
    expect(r.port).toBeLessThan(low!);
    expect(r.url).toBe(`redis://127.0.0.1:${r.port}`);
    expect(parseInfo(String(await redisCommand(r.port, ['INFO', 'server']))).get('process_id')).toBe(String(r.pid));
    expect(await r.client().ping()).toBe('PONG');
    expect(await redisCommand(r.port, ['CONFIG', 'GET', 'maxmemory'])).toEqual(['maxmemory', String(10 * 2 ** 20)]);
    expect(await redisCommand(r.port, ['CONFIG', 'GET', 'save'])).toEqual(['save', '']);
    expect(await redisCommand(r.port, ['CONFIG', 'GET', 'appendonly'])).toEqual(['appendonly', 'no']);
  });

  it('pause() holds every client for the given time', async () => {
    const r = await start();
    const client = r.client();
    await client.ping();
    await r.pause(300);
    const t0 = performance.now();
    await client.ping();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it('kill() ends the server at once; a new one can start on the same port, empty', async () => {
    const r = await start();
    await redisCommand(r.port, ['SET', 'k', 'v']);
    await r.kill();
    expect(isGone(r.pid)).toBe(true);
    await expect(redisCommand(r.port, ['PING'], { timeoutMs: 200 })).rejects.toThrow();
    const again = await start({ port: r.port });
    expect(again.port).toBe(r.port);
    expect(again.pid).not.toBe(r.pid);
    expect(await redisCommand(again.port, ['GET', 'k'])).toBeNull();
  });

  it('stop() closes its clients, ends the server, removes its temp dir, and can be called again', async () => {
    const r = await start();
    const client = r.client();
    await client.ping();
    expect(existsSync(r.dir)).toBe(true);
    await Promise.all([r.stop(), r.stop()]);
    expect(client.status).toBe('end');
    expect(isGone(r.pid)).toBe(true);
    expect(existsSync(r.dir)).toBe(false);
    await r.stop();
  });
  it('tls: serves TLS only on its port, requires a client certificate, and the harness talks TLS to it until it exits', async () => {
    const pki = createTestPki();
    try {
      const r = await start({ tls: pki.serverTls() });
      expect(r.url).toBe(`rediss://127.0.0.1:${r.port}`);
      expect(await r.client().ping()).toBe('PONG');
      expect(await redisCommand(r.port, ['CONFIG', 'GET', 'tls-auth-clients'])).toEqual(['tls-auth-clients', 'yes']);
      expect(await redisCommand(r.port, ['CONFIG', 'GET', 'port'])).toEqual(['port', '0']);
      // Plain TCP and TLS without a client certificate are both refused.
      await expect(redisCommand(r.port, ['PING'], { timeoutMs: 500, tls: false })).rejects.toThrow();
      await expect(
        redisCommand(r.port, ['PING'], { timeoutMs: 500, tls: { ...harnessTls(r.port), cert: undefined, key: undefined } }),
      ).rejects.toThrow();
      await r.kill();
      expect(harnessTls(r.port)).toBeUndefined();
    } finally {
      pki.remove();
    }
  });
});
