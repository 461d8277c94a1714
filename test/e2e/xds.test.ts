import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/telemetry/logger.js';
import { makeTestPki, type TestPki } from '../support/certs.js';
import { bootService, eventually, metricValue, type BootedService } from '../support/service.js';
import { XdsTestServer } from '../support/xds-server.js';

/**
 * The service booted with CONFIG_TYPE=GRPC_XDS_SOTW against the test management server
 * (test/support/xds-server.ts), standing in for Envoy Gateway: the config it pushes is enforced,
 * new versions apply, invalid ones are NACKed while the old one keeps answering, losing and
 * regaining the server, FORCE_START_WITHOUT_INITIAL_CONFIG both ways, and TLS/mTLS.
 */

const UNITS = 'expected one of second, minute, hour, day, week, month, year';
const config = (limit: number, unit = 'HOUR') => ({
  config: { name: 'edge-listener', domain: 'edge', descriptors: [{ key: 'k', rate_limit: { unit, requests_per_unit: limit } }] },
});
const FAST_RETRY = {
  CONFIG_GRPC_XDS_SERVER_CONNECT_RETRY_INTERVAL: '100ms',
  XDS_CLIENT_BACKOFF_INITIAL_INTERVAL: '100ms',
  XDS_CLIENT_BACKOFF_MAX_INTERVAL: '200ms',
};
const xdsEnv = (server: XdsTestServer, extra: Record<string, string> = {}) => ({
  CONFIG_TYPE: 'GRPC_XDS_SOTW',
  CONFIG_GRPC_XDS_SERVER_URL: `127.0.0.1:${server.port}`,
  CONFIG_GRPC_XDS_NODE_ID: 'envoy-ratelimit',
  ...FAST_RETRY,
  ...extra,
});

const T = 1_800_000_000_000;
let svc: BootedService | undefined;
const servers: XdsTestServer[] = [];
let pki: TestPki | undefined;
afterEach(async () => {
  await svc?.close();
  svc = undefined;
  for (const s of servers.splice(0)) await s.stop();
  pki?.remove();
  pki = undefined;
});
const startServer = async (opts?: Parameters<typeof XdsTestServer.start>[0]) => {
  const s = await XdsTestServer.start(opts);
  servers.push(s);
  return s;
};

/** One request; a descriptor-level hits_addend of 0 reads the counter without charging it. */
const hit = (s: BootedService, hitsAddend?: number) =>
  s.client.shouldRateLimit({ domain: 'edge', descriptors: [{ entries: [{ key: 'k', value: 'v' }], hitsAddend }] });
const limitOf = async (s: BootedService) => (await hit(s, 0)).statuses[0]!.currentLimit?.requestsPerUnit ?? null;
const health = async (s: BootedService) => {
  const r = await fetch(`${s.httpUrl}/healthcheck`);
  return { status: r.status, body: await r.text() };
};

describe('xDS config source', () => {
  it('enforces the pushed config, applies a new version, NACKs an invalid one and keeps the old', async () => {
    const server = await startServer();
    server.setSnapshot('v1', [config(2)]);
    const lines: { msg: string; trigger?: string; version?: string; error?: string }[] = [];
    const logger = createLogger({ level: 'info', format: 'json', destination: { write: (l) => void lines.push(JSON.parse(l)) } });
    svc = await bootService({
      env: xdsEnv(server, { CONFIG_GRPC_XDS_NODE_METADATA: 'zone=eu-1', CONFIG_GRPC_XDS_CLIENT_ADDITIONAL_HEADERS: 'x-tenant:blue' }),
      now: () => T,
      logger,
    });
    const s = svc;
    const ack1 = await server.waitForAck('v1');
    expect(ack1.node).toMatchObject({ id: 'envoy-ratelimit', userAgentName: 'meshlimit', metadata: { zone: { stringValue: 'eu-1' } } });
    expect(ack1.typeUrl).toBe('type.googleapis.com/ratelimit.config.ratelimit.v3.RateLimitConfig');
    expect(ack1.resourceNames).toEqual([]);
    expect(ack1.headers['x-tenant']).toBe('blue');
    // The subscription that opened the stream: no version yet, no nonce.
    expect(server.requests[0]).toMatchObject({ versionInfo: '', responseNonce: '', errorDetail: null });
    await eventually(async () => (await health(s)).status === 200);
    expect((await health(s)).body).toBe('OK');
    expect((await hit(s)).overallCode).toBe('OK');
    expect((await hit(s)).overallCode).toBe('OK');
    expect((await hit(s)).overallCode).toBe('OVER_LIMIT');

    server.setSnapshot('v2', [config(5)]);
    await server.waitForAck('v2');
    await eventually(async () => (await limitOf(s)) === 5);
    // Counter identity leaves the threshold out: the 2 admitted hits carry over.
    expect((await hit(s, 0)).statuses[0]!.limitRemaining).toBe(3);

    const before = server.requests.length;
    server.setSnapshot('v3', [
      { config: { name: 'edge-listener', domain: 'edge', descriptors: [{ key: 'k', rate_limit: { requests_per_unit: 1 } }] } },
    ]);
    const nack = await server.waitForNack(before);
    expect(nack.versionInfo).toBe('v2');
    expect(nack.responseNonce).not.toBe('');
    expect(nack.errorDetail).toEqual({ code: 13, message: `xds:edge-listener: descriptors[0].rate_limit.unit: missing; ${UNITS}` });
    expect(await limitOf(s)).toBe(5);
    expect(await metricValue(s.httpUrl, 'meshlimit_config_reloads_total{outcome="failure"}')).toBe(1);
    expect(await metricValue(s.httpUrl, 'meshlimit_config_last_reload_success')).toBe(0);

    server.setSnapshot('v4', [config(7)]);
    await server.waitForAck('v4');
    await eventually(async () => (await limitOf(s)) === 7);
    expect(await metricValue(s.httpUrl, 'meshlimit_config_reloads_total{outcome="success"}')).toBe(3);
    const dump = (await (await fetch(`${s.httpUrl}/rlconfig`)).json()) as { files: string[] };
    expect(dump.files).toEqual(['xds:edge-listener']);
    // The usual reload lines (trigger xds), and the connection's one transition.
    expect(lines.filter((l) => /^config reload|^connect/.test(l.msg)).map((l) => `${l.msg} ${l.trigger ?? ''}`)).toEqual([
      'connecting to the xDS management server ',
      'connected to the xDS management server ',
      'config reloaded xds',
      'config reloaded xds',
      'config reload rejected; keeping the last good config xds',
      'config reloaded xds',
    ]);
    expect(JSON.stringify(lines)).not.toContain('blue');
  });

  it('keeps the last config while the management server is away, and reconnects to a restarted one', async () => {
    const first = await startServer();
    first.setSnapshot('v1', [config(2)]);
    svc = await bootService({ env: xdsEnv(first), now: () => T });
    const s = svc;
    await first.waitForAck('v1');
    await eventually(async () => (await limitOf(s)) === 2);
    const port = first.port;
    await first.stop();
    await eventually(async () => (await health(s)).body.includes('unreachable'));
    expect(await health(s)).toEqual({
      status: 200,
      body: `OK: xDS management server 127.0.0.1:${port} unreachable; serving the last config it sent (version "v1")`,
    });
    expect(await limitOf(s)).toBe(2);

    const second = await startServer({ port });
    second.setSnapshot('v2', [config(9)]);
    // The new stream opens with the version in force, and no nonce (nonces belong to a stream).
    const reopen = await second.waitForRequest((r) => r.responseNonce === '');
    expect(reopen.versionInfo).toBe('v1');
    await second.waitForAck('v2');
    await eventually(async () => (await limitOf(s)) === 9);
    await eventually(async () => (await health(s)).body === 'OK');
  });

  it('a restarted server that still has the applied version sends nothing, and the config stays', async () => {
    const first = await startServer();
    first.setSnapshot('v1', [config(2)]);
    svc = await bootService({ env: xdsEnv(first), now: () => T });
    const s = svc;
    await first.waitForAck('v1');
    const port = first.port;
    await first.stop();
    const second = await startServer({ port });
    second.setSnapshot('v1', [config(2)]);
    await second.waitForRequest((r) => r.responseNonce === '' && r.versionInfo === 'v1');
    await eventually(async () => (await health(s)).body === 'OK');
    expect(await limitOf(s)).toBe(2);
  });
});

describe('FORCE_START_WITHOUT_INITIAL_CONFIG', () => {
  it('false (default): not ready and UNAVAILABLE until the first config, then enforced', async () => {
    const server = await startServer();
    svc = await bootService({ env: xdsEnv(server), now: () => T });
    const s = svc;
    await server.waitForRequest((r) => r.responseNonce === '');
    expect(await health(s)).toEqual({ status: 500, body: 'waiting for the first descriptor config from the xDS management server' });
    expect(await s.client.checkHealth('')).toBe('NOT_SERVING');
    const err = (await hit(s).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.details).toBe('no descriptor config has arrived from the xDS management server yet');
    expect(err.metadata.get('meshlimit-error-code')).toEqual(['ML_ERR_NO_CONFIG']);

    server.setSnapshot('1', [config(1)]);
    await eventually(async () => (await health(s)).status === 200);
    expect(await s.client.checkHealth('')).toBe('SERVING');
    expect((await hit(s)).overallCode).toBe('OK');
    expect((await hit(s)).overallCode).toBe('OVER_LIMIT');
  });

  it('true: ready at once with an empty config, and health says no config has arrived', async () => {
    const server = await startServer();
    svc = await bootService({ env: xdsEnv(server, { FORCE_START_WITHOUT_INITIAL_CONFIG: 'true' }), now: () => T });
    const s = svc;
    await eventually(async () => (await health(s)).status === 200);
    expect((await health(s)).body).toBe(
      'OK: no descriptor config from the xDS management server yet; answering from an empty config (FORCE_START_WITHOUT_INITIAL_CONFIG)',
    );
    expect(await s.client.checkHealth('')).toBe('SERVING');
    const r = await hit(s);
    expect(r.overallCode).toBe('OK');
    expect(r.statuses[0]!.currentLimit).toBeNull();

    server.setSnapshot('1', [config(1)]);
    await eventually(async () => (await health(s)).body === 'OK');
    expect((await hit(s)).overallCode).toBe('OK');
    expect((await hit(s)).overallCode).toBe('OVER_LIMIT');
  });
});

describe('TLS to the management server', () => {
  const tlsEnv = (p: TestPki, extra: Record<string, string> = {}) => ({
    CONFIG_GRPC_XDS_SERVER_USE_TLS: 'true',
    CONFIG_GRPC_XDS_SERVER_TLS_CACERT: p.files.caCert,
    CONFIG_GRPC_XDS_CLIENT_TLS_CERT: p.files.clientCert,
    CONFIG_GRPC_XDS_CLIENT_TLS_KEY: p.files.clientKey,
    CONFIG_GRPC_XDS_SERVER_TLS_SAN: 'xds.meshlimit.test',
    ...extra,
  });
  const mtlsServer = async (p: TestPki) =>
    startServer({ tls: { key: p.read('serverKey'), cert: p.read('serverCert'), ca: p.read('caCert'), requireClientCert: true } });

  it('mTLS, the server verified by the given CA under the name CONFIG_GRPC_XDS_SERVER_TLS_SAN says', async () => {
    pki = makeTestPki({ serverNames: ['xds.meshlimit.test'] });
    const server = await mtlsServer(pki);
    server.setSnapshot('v1', [config(1)]);
    svc = await bootService({ env: xdsEnv(server, tlsEnv(pki)), now: () => T });
    const s = svc;
    await server.waitForAck('v1');
    await eventually(async () => (await health(s)).status === 200);
    expect((await hit(s)).overallCode).toBe('OK');
    expect((await hit(s)).overallCode).toBe('OVER_LIMIT');
  });

  it('refuses a server whose certificate does not carry the expected name, and is refused without a client certificate', async () => {
    pki = makeTestPki({ serverNames: ['xds.meshlimit.test'] });
    const server = await mtlsServer(pki);
    server.setSnapshot('v1', [config(1)]);
    const bootLogged = async (env: Record<string, string>) => {
      const lines: { msg: string; error?: string }[] = [];
      const logger = createLogger({ level: 'warn', format: 'json', destination: { write: (l) => void lines.push(JSON.parse(l)) } });
      svc = await bootService({ env: xdsEnv(server, env), now: () => T, logger });
      await eventually(async () => lines.some((l) => l.msg === 'cannot reach the xDS management server; retrying'));
      return lines.find((l) => l.msg === 'cannot reach the xDS management server; retrying')!.error!;
    };
    // The certificate names xds.meshlimit.test, not 127.0.0.1: without the SAN override it does not verify.
    expect(await bootLogged(tlsEnv(pki, { CONFIG_GRPC_XDS_SERVER_TLS_SAN: '' }))).toMatch(/does not match certificate's altnames/);
    expect(server.requests).toEqual([]);
    expect((await health(svc!)).status).toBe(500);
    await svc!.close();
    // The server requires a client certificate.
    await bootLogged(tlsEnv(pki, { CONFIG_GRPC_XDS_CLIENT_TLS_CERT: '', CONFIG_GRPC_XDS_CLIENT_TLS_KEY: '' }));
    await new Promise((r) => setTimeout(r, 300));
    expect(server.requests).toEqual([]);
    expect((await health(svc!)).status).toBe(500);
  });
});
