import { describe, expect, it } from 'vitest';
import { SettingsError } from '../../../src/errors.js';
import { loadSettings, redactedSettings } from '../../../src/settings/index.js';

function errorOf(env: Record<string, string>): SettingsError {
  try {
    loadSettings(env);
  } catch (err) {
    expect(err).toBeInstanceOf(SettingsError);
    return err as SettingsError;
  }
  throw new Error('loadSettings did not throw');
}

describe('REDIS_PERSECOND (a second Redis for per-second counters, envoyproxy/ratelimit names)', () => {
  it('is off by default, and its other settings are not used while it is off (as upstream)', () => {
    expect(loadSettings({}).redisPerSecond).toBeUndefined();
    expect(loadSettings({ REDIS_PERSECOND_URL: 'ps:6379', REDIS_PERSECOND_TYPE: 'cluster' }).redisPerSecond).toBeUndefined();
    expect(loadSettings({ REDIS_PERSECOND: 'false', REDIS_PERSECOND_URL: 'ps:6379' }).redisPerSecond).toBeUndefined();
  });

  it('needs REDIS_PERSECOND_URL when on', () => {
    expect(errorOf({ REDIS_PERSECOND: 'true' }).message).toBe(
      'setting REDIS_PERSECOND_URL: is required with REDIS_PERSECOND=true: the Redis holding the per-second counters',
    );
  });

  it('reads its own type, address, credentials, sentinel credentials and TLS switch', () => {
    const s = loadSettings({
      REDIS_URL: 'main:6379',
      REDIS_AUTH: 'mainpw',
      REDIS_PERSECOND: 'True',
      REDIS_PERSECOND_TYPE: 'Sentinel',
      REDIS_PERSECOND_URL: 'mymaster,s1:26379,[::1]:26380',
      REDIS_PERSECOND_AUTH: 'user:pa:ss',
      REDIS_PERSECOND_SENTINEL_AUTH: 'sentpw',
      REDIS_PERSECOND_TLS: 'true',
    });
    expect(s.redis).toMatchObject({ type: 'single', nodes: [{ host: 'main', port: 6379 }], auth: { password: 'mainpw' }, tls: false });
    expect(s.redisPerSecond).toMatchObject({
      type: 'sentinel',
      socketType: 'tcp',
      sentinelMasterName: 'mymaster',
      nodes: [
        { host: 's1', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      auth: { username: 'user', password: 'pa:ss' },
      sentinelAuth: { username: undefined, password: 'sentpw' },
      tls: true,
      commandTimeoutMs: 50,
      connectTimeoutMs: 1000,
    });
  });

  it('takes TLS from a rediss:// URL, a database from the path, and the shared timeouts', () => {
    const s = loadSettings({
      REDIS_PERSECOND: '1',
      REDIS_PERSECOND_URL: 'rediss://:pw@ps.svc:6380/3',
      REDIS_COMMAND_TIMEOUT_MS: '80',
      REDIS_CONNECT_TIMEOUT_MS: '900',
    });
    expect(s.redisPerSecond).toMatchObject({
      nodes: [{ host: 'ps.svc', port: 6380 }],
      db: 3,
      tls: true,
      auth: { username: undefined, password: 'pw' },
      url: 'rediss://:[REDACTED]@ps.svc:6380/3',
      commandTimeoutMs: 80,
      connectTimeoutMs: 900,
    });
    expect(s.redis.tls).toBe(false);
  });

  it('names the per-second variables in its errors', () => {
    expect(errorOf({ REDIS_PERSECOND: 'true', REDIS_PERSECOND_URL: 'a:1,b:2' }).message).toBe(
      'setting REDIS_PERSECOND_URL: REDIS_PERSECOND_TYPE=single takes one address; set REDIS_PERSECOND_TYPE=cluster for a seed list or REDIS_PERSECOND_TYPE=sentinel for sentinels',
    );
    expect(errorOf({ REDIS_PERSECOND: 'true', REDIS_PERSECOND_URL: 'redis://:a@h', REDIS_PERSECOND_AUTH: 'b' }).message).toBe(
      'setting REDIS_PERSECOND_AUTH: credentials are given both in REDIS_PERSECOND_URL and REDIS_PERSECOND_AUTH; give them in one place',
    );
    expect(
      errorOf({ REDIS_PERSECOND: 'true', REDIS_PERSECOND_URL: 'h:1', REDIS_PERSECOND_TYPE: 'cluster', REDIS_PERSECOND_SOCKET_TYPE: 'unix' })
        .message,
    ).toBe(
      'setting REDIS_PERSECOND_SOCKET_TYPE: unix sockets work only with REDIS_PERSECOND_TYPE=single, got REDIS_PERSECOND_TYPE=cluster',
    );
    expect(errorOf({ REDIS_PERSECOND: 'true', REDIS_PERSECOND_URL: 'h:1', REDIS_PERSECOND_TYPE: 'proxy' }).message).toBe(
      'setting REDIS_PERSECOND_TYPE: expected one of single, cluster, sentinel (any case), got "proxy"',
    );
  });

  it('connects to a Unix socket with REDIS_PERSECOND_SOCKET_TYPE=unix', () => {
    const s = loadSettings({ REDIS_PERSECOND: 'true', REDIS_PERSECOND_SOCKET_TYPE: 'unix', REDIS_PERSECOND_URL: '/run/ps.sock' });
    expect(s.redisPerSecond).toMatchObject({ path: '/run/ps.sock', nodes: [] });
  });

  it('never echoes its credentials: not in errors, not in redacted settings', () => {
    const err = errorOf({ REDIS_PERSECOND: 'true', REDIS_PERSECOND_URL: 'h:1', REDIS_PERSECOND_AUTH: 'topsecret:' });
    expect(err.message).not.toContain('topsecret');
    const r = redactedSettings(
      loadSettings({
        REDIS_PERSECOND: 'true',
        REDIS_PERSECOND_TYPE: 'sentinel',
        REDIS_PERSECOND_URL: 'm,redis://u:inurl@s:26379',
        REDIS_PERSECOND_SENTINEL_AUTH: 'sent:hunter2',
      }),
    );
    const text = JSON.stringify(r);
    for (const secret of ['inurl', 'hunter2']) expect(text).not.toContain(secret);
    expect(r.redisPerSecond?.auth).toEqual({ username: 'u', password: '[REDACTED]' });
    expect(r.redisPerSecond?.sentinelAuth).toEqual({ username: 'sent', password: '[REDACTED]' });
  });
});
