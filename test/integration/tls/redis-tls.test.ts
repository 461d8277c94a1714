import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackend } from '../../../src/backend/index.js';
import type { RedisBackend } from '../../../src/backend/redis/backend.js';
import type { RedisClusterBackend } from '../../../src/backend/redis/cluster-backend.js';
import type { CounterOp } from '../../../src/limiter/types.js';
import { loadSettings } from '../../../src/settings/index.js';
import { NODE_TAGS } from '../backend/conformance.js';
import { redisCommand } from '../../support/redis-admin.js';
import { startRedisCluster, type RedisCluster } from '../../support/redis-cluster.js';
import { startRedis, type RedisInstance } from '../../support/redis.js';
import { startRedisSentinel, type RedisSentinelSetup } from '../../support/redis-sentinel.js';
import { createTestPki, type TestPki } from '../../support/tls-pki.js';

/**
 * Redis over TLS with client certificates, as Envoy Gateway runs envoyproxy/ratelimit: real
 * TLS-only redis-servers (`--port 0 --tls-port`, `--tls-auth-clients yes`) with a throwaway PKI
 * generated for this run, and the connection built exactly as the service builds it: environment
 * -> loadSettings (files read there) -> the Redis backend. Every failure case checks the reason
 * the connection gives, so a refusal for the wrong reason fails.
 */

let pki: TestPki;
/** Requires a client certificate; its certificate names 127.0.0.1 and localhost. */
let redis: RedisInstance;
/** Requires a client certificate; its certificate (from the same CA) names only redis.invalid. */
let wrongName: RedisInstance;
let cluster: RedisCluster;
/** A cluster whose every node presents the redis.invalid certificate. */
let wrongNameCluster: RedisCluster;
/** A cluster that announces its nodes as `localhost`, every node presenting a certificate for that name only. */
let hostnameCluster: RedisCluster;
/** A primary, a replica and three sentinels, every one TLS-only and requiring client certificates. */
let sentinel: RedisSentinelSetup;
const opened = new Set<RedisBackend | RedisClusterBackend>();

beforeAll(async () => {
  pki = createTestPki();
  const wrongNameTls = { ...pki.serverTls(), cert: pki.wrongName.cert, key: pki.wrongName.key };
  redis = await startRedis({ tls: pki.serverTls() });
  wrongName = await startRedis({ tls: wrongNameTls });
  cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 0, tls: pki.serverTls() });
  wrongNameCluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 0, tls: wrongNameTls });
  hostnameCluster = await startRedisCluster({
    primaries: 3,
    replicasPerPrimary: 0,
    tls: { ...pki.serverTls(), cert: pki.localhostOnly.cert, key: pki.localhostOnly.key },
    args: ['--cluster-announce-hostname', 'localhost', '--cluster-preferred-endpoint-type', 'hostname'],
  });
  sentinel = await startRedisSentinel({ tls: pki.serverTls() });
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([...opened].map((b) => b.close()));
  await Promise.allSettled([
    redis?.stop(),
    wrongName?.stop(),
    cluster?.stop(),
    wrongNameCluster?.stop(),
    hostnameCluster?.stop(),
    sentinel?.stop(),
  ]);
  pki?.remove();
});

/** The mutual-TLS settings Envoy Gateway gives (plus the CA, which it leaves to the system store). */
const mtls = (): Record<string, string> => ({
  REDIS_TLS: 'true',
  REDIS_TLS_CACERT: pki.ca,
  REDIS_TLS_CLIENT_CERT: pki.client.cert,
  REDIS_TLS_CLIENT_KEY: pki.client.key,
});

/** The backend the service would build from `env`. */
function backendFrom(env: Record<string, string>): RedisBackend | RedisClusterBackend {
  const settings = loadSettings({ BACKEND_TYPE: 'redis', ...env });
  const backend = createBackend({ type: 'redis', redis: settings.redis }) as RedisBackend | RedisClusterBackend;
  opened.add(backend);
  return backend;
}

/** Connects with `env`; resolves to 'ready' or to why it could not (the backend's own error). */
async function connect(
  env: Record<string, string>,
  timeoutMs = 2_000,
): Promise<{ backend: RedisBackend | RedisClusterBackend; outcome: string }> {
  const backend = backendFrom(env);
  try {
    await backend.waitReady(timeoutMs);
    return { backend, outcome: 'ready' };
  } catch (err) {
    await backend.close();
    return { backend, outcome: err instanceof Error ? err.message : String(err) };
  }
}

const op = (key: string): CounterOp => ({
  key,
  algorithm: 'fixed_window',
  windowMs: 60_000,
  threshold: 10,
  burst: 10,
  hits: 1,
  enforce: true,
});

describe('standalone Redis over TLS with a client certificate', () => {
  const url = (): string => `127.0.0.1:${redis.port}`;

  it('presents REDIS_TLS_CLIENT_CERT/KEY, which the server accepts, and counts there', async () => {
    const { backend, outcome } = await connect({ REDIS_URL: url(), ...mtls() }, 5_000);
    expect(outcome).toBe('ready');
    const r = await backend.evaluate([op('{tls}:standalone')], { chargeOnDeny: false });
    expect(r.outcomes[0]).toMatchObject({ overLimit: false, remaining: 9 });
    expect(await redisCommand(redis.port, ['EXISTS', '{tls}:standalone'])).toBe(1);
  });

  it('rediss:// turns TLS on as well, and a certificate naming localhost is verified against that name', async () => {
    const { REDIS_TLS: _on, ...files } = mtls();
    expect((await connect({ REDIS_URL: `rediss://localhost:${redis.port}`, ...files }, 5_000)).outcome).toBe('ready');
  });

  /** The reasons the server logged for refusing connections, from the `Error accepting a client connection` lines. */
  const refusals = (): string[] =>
    readFileSync(redis.logFile, 'utf8')
      .split('\n')
      .flatMap((l) => /Error accepting a client connection: error:[0-9A-F]+:(.*?)(?: \(conn: .*\))?$/.exec(l)?.[1] ?? []);

  // A TLS 1.3 server refuses a client certificate after the handshake, by an alert; the client's
  // first write often meets the closed socket (a reset) before it reads that alert. The backend
  // reports the alert whenever one of its attempts read it; the server's log always says why.
  it('without a client certificate the server refuses the connection: "certificate required"', async () => {
    const before = refusals().length;
    const { outcome } = await connect({ REDIS_URL: url(), REDIS_TLS: 'true', REDIS_TLS_CACERT: pki.ca });
    expect(outcome).toMatch(/^redis not ready after 2000 ms: (.*tlsv13 alert certificate required|write ECONNRESET)/);
    const reasons = refusals().slice(before);
    expect(reasons.length).toBeGreaterThan(0);
    expect(new Set(reasons)).toEqual(new Set(['SSL routines::peer did not return a certificate']));
  });

  it('a client certificate from another CA is refused: "unknown ca"', async () => {
    const before = refusals().length;
    const { outcome } = await connect({
      REDIS_URL: url(),
      ...mtls(),
      REDIS_TLS_CLIENT_CERT: pki.otherClient.cert,
      REDIS_TLS_CLIENT_KEY: pki.otherClient.key,
    });
    expect(outcome).toMatch(/^redis not ready after 2000 ms: (.*alert unknown ca|write ECONNRESET)/);
    const reasons = refusals().slice(before);
    expect(reasons.length).toBeGreaterThan(0);
    expect(new Set(reasons)).toEqual(new Set(['SSL routines::certificate verify failed']));
  });

  it('a server certificate that does not chain to REDIS_TLS_CACERT is refused, and so it is against the default CAs', async () => {
    const wrongCa = await connect({ REDIS_URL: url(), ...mtls(), REDIS_TLS_CACERT: pki.otherCa });
    expect(wrongCa.outcome).toBe('redis not ready after 2000 ms: self-signed certificate in certificate chain');
    const { REDIS_TLS_CACERT: _ca, ...noCa } = mtls();
    expect((await connect({ REDIS_URL: url(), ...noCa })).outcome).toBe(
      'redis not ready after 2000 ms: self-signed certificate in certificate chain',
    );
  });

  it('plain TCP to a TLS-only server never becomes ready', async () => {
    expect((await connect({ REDIS_URL: url() })).outcome).toMatch(/^redis not ready after 2000 ms/);
  });
});

describe('REDIS_TLS_SKIP_HOSTNAME_VERIFICATION (verify the chain, not the name, as upstream)', () => {
  const url = (): string => `127.0.0.1:${wrongName.port}`;

  it('a certificate for another name is refused by default, naming the mismatch', async () => {
    const { outcome } = await connect({ REDIS_URL: url(), ...mtls() });
    expect(outcome).toBe(
      "redis not ready after 2000 ms: Hostname/IP does not match certificate's altnames: IP: 127.0.0.1 is not in the cert's list: ",
    );
  });

  it('is accepted with REDIS_TLS_SKIP_HOSTNAME_VERIFICATION=true', async () => {
    const { backend, outcome } = await connect({ REDIS_URL: url(), ...mtls(), REDIS_TLS_SKIP_HOSTNAME_VERIFICATION: 'true' }, 5_000);
    expect(outcome).toBe('ready');
    expect((await backend.evaluate([op('{tls}:skip')], { chargeOnDeny: false })).denied).toBe(false);
    expect(await redisCommand(wrongName.port, ['EXISTS', '{tls}:skip'])).toBe(1);
  });

  it('still refuses a chain it does not trust', async () => {
    const { outcome } = await connect({
      REDIS_URL: url(),
      ...mtls(),
      REDIS_TLS_CACERT: pki.otherCa,
      REDIS_TLS_SKIP_HOSTNAME_VERIFICATION: 'true',
    });
    expect(outcome).toBe('redis not ready after 2000 ms: self-signed certificate in certificate chain');
  });
});

describe('Redis Cluster over TLS (every node connection)', () => {
  const ops = (prefix: string): CounterOp[] => NODE_TAGS.map((tag) => op(`${prefix}{${tag}}:k`));

  /** True when each op's key exists on the primary serving it, and the three are on three different primaries. */
  async function onThreePrimaries(c: RedisCluster, keys: readonly string[]): Promise<boolean> {
    const owners = await Promise.all(keys.map((k) => c.primaryForKey(k)));
    const found = await Promise.all(keys.map((k, i) => redisCommand(owners[i]!.port, ['EXISTS', k])));
    return new Set(owners.map((o) => o.port)).size === 3 && found.every((n) => n === 1);
  }

  it('reaches every primary with the client certificate', async () => {
    const { backend, outcome } = await connect({ REDIS_TYPE: 'cluster', REDIS_URL: cluster.seeds, ...mtls() }, 10_000);
    expect(outcome).toBe('ready');
    const r = await backend.evaluate(ops('tls-c:'), { chargeOnDeny: false });
    expect(r.outcomes.map((o) => o.remaining)).toEqual([9, 9, 9]);
    expect(
      await onThreePrimaries(
        cluster,
        ops('tls-c:').map((o) => o.key),
      ),
    ).toBe(true);
  });

  // ioredis does not say why here: its slot-map refresher swallows its connection's errors, so
  // the cluster reports "Failed to refresh slots cache. Last node error: Connection is closed.".
  // The nodes' logs say why (and REDIS_TYPE=single against one node shows the TLS error).
  it('is refused without a client certificate', async () => {
    const { REDIS_TLS_CLIENT_CERT: _c, REDIS_TLS_CLIENT_KEY: _k, ...noClient } = mtls();
    const { outcome } = await connect({ REDIS_TYPE: 'cluster', REDIS_URL: cluster.seeds, ...noClient });
    expect(outcome).toMatch(/^redis cluster not ready after 2000 ms: Failed to refresh slots cache\./);
    const logs = cluster.ports.map((port) => readFileSync(`${cluster.dir}/node-${port}/redis.log`, 'utf8')).join('\n');
    expect(logs).toContain('Error accepting a client connection: error:0A0000C7:SSL routines::peer did not return a certificate');
  });

  it('skips the name check on every node, the ones CLUSTER SLOTS announced included, only when asked', async () => {
    const refused = await connect({ REDIS_TYPE: 'cluster', REDIS_URL: wrongNameCluster.seeds, ...mtls() });
    // Refused for the name alone: the same settings plus the skip connect below.
    expect(refused.outcome).toMatch(/^redis cluster not ready after 2000 ms: Failed to refresh slots cache\./);
    const { backend, outcome } = await connect(
      { REDIS_TYPE: 'cluster', REDIS_URL: wrongNameCluster.seeds, ...mtls(), REDIS_TLS_SKIP_HOSTNAME_VERIFICATION: 'true' },
      10_000,
    );
    expect(outcome).toBe('ready');
    const r = await backend.evaluate(ops('tls-skip:'), { chargeOnDeny: false });
    expect(r.outcomes.map((o) => o.remaining)).toEqual([9, 9, 9]);
    expect(
      await onThreePrimaries(
        wrongNameCluster,
        ops('tls-skip:').map((o) => o.key),
      ),
    ).toBe(true);
  });
});

describe('Redis Cluster over TLS, announcing hostnames (certificates for names, not addresses)', () => {
  const byName = (): string => hostnameCluster.seeds.replaceAll('127.0.0.1', 'localhost');
  const ops = (prefix: string): CounterOp[] => NODE_TAGS.map((tag) => op(`${prefix}{${tag}}:k`));

  it('seeds given by name are dialled and verified by that name, then every node by the name it announces', async () => {
    const { backend, outcome } = await connect({ REDIS_TYPE: 'cluster', REDIS_URL: byName(), ...mtls() }, 10_000);
    expect(outcome).toBe('ready');
    expect((await backend.evaluate(ops('tls-host:'), { chargeOnDeny: false })).outcomes.map((o) => o.remaining)).toEqual([9, 9, 9]);
    const owners = await Promise.all(ops('tls-host:').map((o) => hostnameCluster.primaryForKey(o.key)));
    expect(new Set(owners.map((o) => o.port)).size).toBe(3);
  });

  it('seeds given by address are refused: the certificates do not list it', async () => {
    const { outcome } = await connect({ REDIS_TYPE: 'cluster', REDIS_URL: hostnameCluster.seeds, ...mtls() });
    expect(outcome).toMatch(/^redis cluster not ready after 2000 ms: Failed to refresh slots cache\./);
  });
});

describe('Sentinel over TLS: one switch for the sentinels and the primary they name, as upstream', () => {
  it('asks the sentinels and counts on the primary, both with the client certificate', async () => {
    const { backend, outcome } = await connect({ REDIS_TYPE: 'sentinel', REDIS_URL: sentinel.redisUrl, ...mtls() }, 5_000);
    expect(outcome).toBe('ready');
    expect((await backend.evaluate([op('{tls}:sentinel')], { chargeOnDeny: false })).outcomes[0]!.remaining).toBe(9);
    expect(await sentinel.command(await sentinel.primaryPort(), 'EXISTS', '{tls}:sentinel')).toBe(1);
  });

  it('is refused by the sentinels without a client certificate', async () => {
    const { REDIS_TLS_CLIENT_CERT: _c, REDIS_TLS_CLIENT_KEY: _k, ...noClient } = mtls();
    const { outcome } = await connect({ REDIS_TYPE: 'sentinel', REDIS_URL: sentinel.redisUrl, ...noClient });
    expect(outcome).toMatch(/^redis \(sentinel\) not ready after 2000 ms: All sentinels are unreachable/);
  });
});
