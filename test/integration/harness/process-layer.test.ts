/**
 * The harness plumbing: free ports, clear errors, orphan reaping after a SIGKILLed test process.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { getFreePort, isPortFree } from '../../support/ports.js';
import { RedisHarnessError, waitUntil } from '../../support/redis-admin.js';
import { reapOrphans } from '../../support/redis-cleanup.js';
import { startRedisCluster } from '../../support/redis-cluster.js';
import { startRedis } from '../../support/redis.js';
import { startRedisSentinel } from '../../support/redis-sentinel.js';

/** Gone, or a zombie nobody reaps (PID 1 in some containers does not). */
const isGoneOrZombie = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
};

describe('getFreePort', () => {
  it('returns a bindable port whose cluster bus port is bindable too, both below the ephemeral range', async () => {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    const port = await getFreePort({ withClusterBus: true });
    expect(port).toBeGreaterThanOrEqual(10_000);
    expect(port + 10_000).toBeLessThan(low!);
    expect(await isPortFree(port)).toBe(true);
    expect(await isPortFree(port + 10_000)).toBe(true);
  });

  it('isPortFree is false for a port someone listens on', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    try {
      expect(await isPortFree(port)).toBe(false);
    } finally {
      server.close();
    }
  });
});

describe('clear start-up errors', () => {
  it('names the missing binary and how to install it', async () => {
    const missing = '/nonexistent/redis-server';
    await expect(startRedisCluster({ binaries: { server: missing } })).rejects.toThrow(RedisHarnessError);
    await expect(startRedisCluster({ binaries: { server: missing } })).rejects.toThrow(
      /^redis-server is not runnable \(tried "\/nonexistent\/redis-server": spawnSync \/nonexistent\/redis-server ENOENT\); install them: apt-get install redis-server/,
    );
    await expect(startRedisCluster({ binaries: { cli: '/nonexistent/redis-cli' } })).rejects.toThrow(/^redis-cli is not runnable/);
    await expect(startRedisSentinel({ binaries: { server: missing } })).rejects.toThrow(/^redis-server is not runnable/);
    await expect(startRedis({ binaries: { server: missing } })).rejects.toThrow(/^redis-server is not runnable/);
  });

  it('rejects a cluster smaller than redis-cli can create', async () => {
    await expect(startRedisCluster({ primaries: 2 })).rejects.toThrow(
      'startRedisCluster: primaries must be an integer >= 3 (redis-cli --cluster create needs 3), got 2',
    );
  });
});

/** Starts the fixture; resolves with the owner process and what it started. */
async function startOwner(mode: 'idle' | 'exit' | 'throw') {
  const fixture = fileURLToPath(new URL('./fixtures/orphan-owner.ts', import.meta.url));
  const owner = spawn(process.execPath, ['--import', 'tsx', fixture, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(owner, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const [line] = (await once(owner.stdout!, 'data')) as [Buffer];
  const { pid, root } = JSON.parse(line.toString()) as { pid: number; root: string };
  return { owner, exited, pid, root };
}

describe('cleanup when the test process dies', () => {
  let started: Awaited<ReturnType<typeof startOwner>> | undefined;
  afterEach(() => {
    started?.owner.kill('SIGKILL');
    if (started !== undefined && !isGoneOrZombie(started.pid)) process.kill(started.pid, 'SIGKILL');
    started = undefined;
  });

  it('process.exit: the exit hook kills the server and removes the temp dir', async () => {
    started = await startOwner('exit');
    expect(await started.exited).toEqual([3, null]);
    expect(isGoneOrZombie(started.pid)).toBe(true);
    expect(existsSync(started.root)).toBe(false);
  });

  it('uncaught error: the exit hook kills the server and removes the temp dir', async () => {
    started = await startOwner('throw');
    expect(await started.exited).toEqual([1, null]);
    expect(isGoneOrZombie(started.pid)).toBe(true);
    expect(existsSync(started.root)).toBe(false);
  });

  it('SIGTERM: the signal hook kills the server, removes the temp dir and still ends the process by SIGTERM', async () => {
    started = await startOwner('idle');
    started.owner.kill('SIGTERM');
    expect(await started.exited).toEqual([null, 'SIGTERM']);
    expect(isGoneOrZombie(started.pid)).toBe(true);
    expect(existsSync(started.root)).toBe(false);
  });

  it('SIGKILL: no hook can run, so the next harness start reaps the orphan and its temp dir', async () => {
    started = await startOwner('idle');
    started.owner.kill('SIGKILL');
    await started.exited;
    expect(isGoneOrZombie(started.pid)).toBe(false); // orphaned, still serving
    expect(existsSync(started.root)).toBe(true);

    reapOrphans();

    const { pid } = started;
    await waitUntil(`orphan ${pid} to die`, 5_000, async () => (isGoneOrZombie(pid) ? true : 'still running'));
    expect(existsSync(started.root)).toBe(false);
  });
});
