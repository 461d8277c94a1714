/**
 * Smoke tests of the Sentinel harness against real `redis-server` processes.
 * The tests share one set-up and run in order; the last one stops it.
 */
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInfo } from '../../support/redis-admin.js';
import { type RedisSentinelSetup, startRedisSentinel } from '../../support/redis-sentinel.js';

const isGone = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
};

describe('startRedisSentinel (primary + replica + 3 sentinels)', () => {
  let setup: RedisSentinelSetup;
  let primary: number;
  let replica: number;

  beforeAll(async () => {
    const t0 = performance.now();
    setup = await startRedisSentinel();
    console.info(`[harness] Sentinel set-up start-up: ${Math.round(performance.now() - t0)} ms`);
  });
  afterAll(async () => {
    await setup?.stop();
  });

  it('comes up: every sentinel names the same primary on 127.0.0.1 and the replica follows it', async () => {
    primary = await setup.primaryPort();
    expect(setup.dataPorts).toContain(primary);
    replica = setup.dataPorts.find((p) => p !== primary)!;
    expect(setup.sentinels).toBe(setup.sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','));
    expect(setup.redisUrl).toBe(`mymaster,${setup.sentinels}`);
    expect(setup.sentinelPorts).toHaveLength(3);
    for (const port of setup.sentinelPorts) {
      expect(await setup.command(port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'mymaster')).toEqual(['127.0.0.1', String(primary)]);
    }
    const repl = parseInfo(String(await setup.command(replica, 'INFO', 'replication')));
    expect(repl.get('role')).toBe('slave');
    expect(repl.get('master_host')).toBe('127.0.0.1');
    expect(repl.get('master_port')).toBe(String(primary));
  });

  it('killPrimary: the sentinels promote the replica and the client reconnects to it', async () => {
    const client = setup.client();
    await client.set('harness:k', 'survives');
    expect(await client.call('WAIT', '1', '2000')).toBe(1); // the replica has the write

    const t0 = performance.now();
    expect(await setup.killPrimary()).toBe(primary);
    expect(await setup.waitForFailover()).toBe(replica);
    console.info(`[harness] Sentinel failover after SIGKILL: ${Math.round(performance.now() - t0)} ms`);

    expect(await setup.primaryPort()).toBe(replica);
    expect(await client.get('harness:k')).toBe('survives');
    await client.set('harness:after', 'written');
    expect(await setup.command(replica, 'GET', 'harness:after')).toBe('written');
  });

  it('stop() kills every process it spawned and removes the temp dir', async () => {
    const pids = setup.pids();
    expect(pids).toHaveLength(5);
    await setup.stop();
    for (const pid of pids) expect(isGone(pid)).toBe(true);
    expect(existsSync(setup.dir)).toBe(false);
  });
});
