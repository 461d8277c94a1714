import { afterEach, describe, expect, it } from 'vitest';
import { compileXdsResources, ConfigStore, XdsConfigUpdates, type CompiledSnapshot, type ReloadEvent } from '../../../src/config/index.js';
import { XdsClient, type XdsClientOptions, type XdsStateChange } from '../../../src/xds/client.js';
import { channelCredentials } from '../../../src/xds/credentials.js';
import { eventually } from '../../support/service.js';
import { XdsTestServer, RATE_LIMIT_CONFIG_TYPE } from '../../support/xds-server.js';

/**
 * The xDS client on its own against the test management server: what it NACKs besides an invalid
 * config (undecodable bytes, a resource of another type), its connection states and retries, the
 * largest response it takes, and that close() stops it.
 */

const edge = (limit: number) => ({
  config: { name: 'edge', domain: 'edge', descriptors: [{ key: 'k', rate_limit: { unit: 'SECOND', requests_per_unit: limit } }] },
});

const clients: XdsClient[] = [];
const servers: XdsTestServer[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of servers.splice(0)) await s.stop();
});

function startClient(target: string, extra: Partial<XdsClientOptions> = {}) {
  const store = new ConfigStore<CompiledSnapshot>(compileXdsResources([]));
  const reloads: ReloadEvent[] = [];
  const states: XdsStateChange[] = [];
  const updates = new XdsConfigUpdates({ store, forceStart: false, onReload: (e) => reloads.push(e) });
  const client = new XdsClient({
    target,
    node: { id: 'node-1', metadata: {} },
    headers: {},
    credentials: () => channelCredentials(undefined),
    connectRetryMs: 50,
    backoff: { initialMs: 50, maxMs: 100, factor: 2, jitter: false },
    updates,
    onState: (c) => states.push(c),
    ...extra,
  });
  clients.push(client);
  client.start();
  return { client, store, reloads, states, updates };
}
const startServer = async (port?: number) => {
  const s = await XdsTestServer.start({ port });
  servers.push(s);
  return s;
};

describe('xDS client', () => {
  it('NACKs undecodable resource bytes and a resource of another type, naming the resource, and keeps the config', async () => {
    const server = await startServer();
    server.setSnapshot('1', [edge(5)]);
    const { store, reloads } = startClient(`127.0.0.1:${server.port}`);
    await server.waitForAck('1');
    const good = store.current();

    let before = server.requests.length;
    // Resource 1: a descriptor (field 3) announced as 3 bytes long, with 1 present.
    server.setSnapshot('2', [edge(5), { raw: { typeUrl: RATE_LIMIT_CONFIG_TYPE, value: Buffer.from([0x1a, 0x03, 0x0a]) } }]);
    let nack = await server.waitForNack(before);
    expect(nack.versionInfo).toBe('1');
    expect(nack.errorDetail?.message).toMatch(/^xds:resources\[1\]: cannot decode ratelimit\.config\.ratelimit\.v3\.RateLimitConfig: /);

    before = server.requests.length;
    const other = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
    server.setSnapshot('3', [{ raw: { typeUrl: other, value: Buffer.alloc(0) } }]);
    nack = await server.waitForNack(before);
    expect(nack.errorDetail).toEqual({
      code: 13,
      message: `xds:resources[0]: type_url '${other}' is not type.googleapis.com/ratelimit.config.ratelimit.v3.RateLimitConfig`,
    });
    expect(store.current()).toBe(good);
    expect(reloads.map((e) => e.ok)).toEqual([true, false, false]);
  });

  it('answers each response with its nonce, and sends the newest snapshot set while it was busy', async () => {
    const server = await startServer();
    const { store } = startClient(`127.0.0.1:${server.port}`);
    await server.waitForRequest((r) => r.responseNonce === '');
    server.setSnapshot('a', [edge(1)]);
    server.setSnapshot('b', [edge(2)]);
    server.setSnapshot('c', [edge(3)]);
    await server.waitForAck('c');
    const answers = server.requests.filter((r) => r.responseNonce !== '');
    // Every answer carries the nonce of a response, never twice; 'b' was superseded before it went out.
    expect(new Set(answers.map((r) => r.responseNonce)).size).toBe(answers.length);
    expect(answers.map((r) => r.versionInfo)).toEqual(['a', 'c']);
    expect(store.current().findRule('edge', [{ key: 'k', value: 'v' }])?.limits[0]?.requestsPerUnit).toBe(3);
  });

  it('logs transitions only: an unreachable server is one disconnected state however many retries', async () => {
    const probe = await startServer();
    const port = probe.port;
    await probe.stop();
    servers.length = 0;
    const { states, client } = startClient(`127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 400)); // several 50 ms retries
    expect(states.map((s) => `${s.previous ?? '-'}>${s.state}`)).toEqual(['->connecting', 'connecting>disconnected']);
    expect(states[1]!.retryInMs).toBeGreaterThanOrEqual(25);
    expect(states[1]!.retryInMs).toBeLessThanOrEqual(75);

    const server = await startServer(port);
    server.setSnapshot('1', [edge(1)]);
    await server.waitForAck('1');
    expect(client.state).toBe('connected');
    await server.stop();
    await eventually(async () => client.state === 'disconnected');
    expect(states.map((s) => `${s.previous ?? '-'}>${s.state}`)).toEqual([
      '->connecting',
      'connecting>disconnected',
      'disconnected>connected',
      'connected>disconnected',
    ]);
    // Lost after a response: the reconnect backoff, restarted by that response (initial 50 ms).
    expect(states[3]!.retryInMs).toBe(50);
  });

  it('a response larger than XDS_CLIENT_MAX_MSG_SIZE_IN_BYTES ends the stream and is never applied', async () => {
    const server = await startServer();
    const big = Array.from({ length: 200 }, (_, i) => ({ key: `key-${i}`, rate_limit: { unit: 'SECOND', requests_per_unit: 1 } }));
    server.setSnapshot('1', [{ config: { name: 'big', domain: 'big', descriptors: big } }]);
    const { states, updates } = startClient(`127.0.0.1:${server.port}`, { maxReceiveMessageBytes: 1024 });
    await eventually(async () => states.some((s) => s.state === 'disconnected'));
    expect(states.find((s) => s.state === 'disconnected')?.error).toMatch(/^RESOURCE_EXHAUSTED: .*larger than max/);
    expect(updates.hasConfig()).toBe(false);
  });

  it('close() ends the stream and stops reconnecting', async () => {
    const server = await startServer();
    server.setSnapshot('1', [edge(1)]);
    const { client } = startClient(`127.0.0.1:${server.port}`);
    await server.waitForAck('1');
    await client.close();
    await eventually(async () => server.openStreams === 0);
    const seen = server.requests.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(server.requests.length).toBe(seen);
  });
});
