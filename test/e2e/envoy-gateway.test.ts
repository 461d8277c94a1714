import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRlsClient, type RlsClient } from '../../src/client/rls-client.js';
import { spawnTracked, type TrackedChild } from '../support/child.js';
import { getFreePort } from '../support/ports.js';
import { redisCommand } from '../support/redis-admin.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { secretVolume, type SecretVolume } from '../support/secret-volume.js';
import { eventually, metricValue } from '../support/service.js';
import { createTestPki, type CertFiles, type TestPki } from '../support/tls-pki.js';
import { XdsTestServer } from '../support/xds-server.js';

/**
 * meshlimit where Envoy Gateway runs envoyproxy/ratelimit: the real process (`src/main.ts`),
 * configured by the environment Envoy Gateway gives its rate-limit Deployment
 * (internal/infrastructure/kubernetes/ratelimit/resource.go): its descriptor config pushed over
 * xDS by a management server it reaches over mTLS, its gRPC port served over TLS from the
 * certificates mounted at /certs (a Secret volume, here a directory laid out as the kubelet lays
 * one out), its counters in a TLS-only `redis-server` reached with a client certificate.
 *
 * What this run adds to Envoy Gateway's environment, and why: free loopback ports and addresses
 * instead of 8080/8081 and envoy-gateway:18001; the throwaway CA for Redis
 * (REDIS_TLS_CACERT: Envoy Gateway's Redis is trusted through the system roots);
 * BACKEND_TYPE is left unset, as Envoy Gateway leaves it (with REDIS_URL set, meshlimit uses Redis);
 * GRPC_CLIENT_TLS_CACERT, so that client certificates are required (Envoy Gateway sets
 * GRPC_SERVER_TLS_CA_CERT, which envoyproxy/ratelimit does not read; its Envoy presents one
 * anyway); and a short GRPC_SERVER_TLS_RELOAD_INTERVAL and xDS retry so the test is quick.
 * Its metrics port (USE_PROMETHEUS, PROMETHEUS_ADDR `:19001` there) is a free loopback port here.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const UNITS = 'expected one of second, minute, hour, day, week, month, year';
const config = (limit: number, unit = 'HOUR') => ({
  config: { name: 'envoy-gateway/eg/http', domain: 'eg', descriptors: [{ key: 'route', rate_limit: { unit, requests_per_unit: limit } }] },
});

let metricsPort: number;
let pki: TestPki;
let rotated: CertFiles;
let certs: SecretVolume;
let redis: RedisInstance;
let xds: XdsTestServer;
let proc: TrackedChild;
let httpUrl: string;
let grpcTarget: string;
const clients: RlsClient[] = [];

const serialOf = (file: string): string => new X509Certificate(readFileSync(file)).serialNumber;

/** An RLS client as Envoy Gateway's Envoy is one: TLS, verifying the server by the CA at /certs, with a client certificate. */
function client(cert: CertFiles | null = pki.client, ca = pki.ca): RlsClient {
  const credentials = grpc.credentials.createSsl(
    readFileSync(ca),
    cert === null ? null : readFileSync(cert.key),
    cert === null ? null : readFileSync(cert.cert),
  );
  const c = createRlsClient(grpcTarget, { credentials });
  clients.push(c);
  return c;
}

/** One request for the route; `hitsAddend` 0 reads the counter without charging it. */
const hit = (c: RlsClient, hitsAddend?: number) =>
  c.shouldRateLimit({ domain: 'eg', descriptors: [{ entries: [{ key: 'route', value: 'r1' }], hitsAddend }] });
const limitOf = async (c: RlsClient) => (await hit(c, 0)).statuses[0]!.currentLimit?.requestsPerUnit ?? null;

/** The serial of the certificate the server presented on the connection a health Check went over. */
function peerSerial(c: RlsClient): Promise<string> {
  return new Promise((resolve, reject) => {
    const call = c.raw.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      (err) => {
        if (err) return reject(err);
        const serial = call.getAuthContext()?.sslPeerCertificate?.serialNumber;
        return serial === undefined ? reject(new Error('no server certificate in the call auth context')) : resolve(serial);
      },
    );
  });
}

beforeAll(async () => {
  pki = createTestPki();
  // The next certificate cert-manager would issue for the same Service (and, as Envoy Gateway
  // mounts one Secret for both, for the xDS client too).
  rotated = pki.issue('server-rotated', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth');
  certs = secretVolume({ 'tls.crt': pki.server.cert, 'tls.key': pki.server.key, 'ca.crt': pki.ca });
  redis = await startRedis({ tls: pki.serverTls() });
  xds = await XdsTestServer.start({
    tls: { key: readFileSync(pki.server.key), cert: readFileSync(pki.server.cert), ca: readFileSync(pki.ca), requireClientCert: true },
  });
  xds.setSnapshot('v1', [config(2)]);
  const [httpPort, grpcPort] = [await getFreePort(), await getFreePort()];
  metricsPort = await getFreePort();
  httpUrl = `http://127.0.0.1:${httpPort}`;
  grpcTarget = `127.0.0.1:${grpcPort}`;
  proc = spawnTracked(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      // Envoy Gateway's environment (resource.go), paths under this run's /certs.
      RUNTIME_ROOT: '/data',
      RUNTIME_SUBDIRECTORY: 'ratelimit',
      RUNTIME_IGNOREDOTFILES: 'true',
      RUNTIME_WATCH_ROOT: 'false',
      LOG_LEVEL: 'info',
      USE_STATSD: 'false',
      CONFIG_TYPE: 'GRPC_XDS_SOTW',
      CONFIG_GRPC_XDS_SERVER_URL: `127.0.0.1:${xds.port}`,
      CONFIG_GRPC_XDS_NODE_ID: 'envoy-ratelimit',
      GRPC_SERVER_USE_TLS: 'true',
      GRPC_SERVER_TLS_CERT: certs.path('tls.crt'),
      GRPC_SERVER_TLS_KEY: certs.path('tls.key'),
      GRPC_SERVER_TLS_CA_CERT: certs.path('ca.crt'),
      CONFIG_GRPC_XDS_SERVER_USE_TLS: 'true',
      CONFIG_GRPC_XDS_CLIENT_TLS_CERT: certs.path('tls.crt'),
      CONFIG_GRPC_XDS_CLIENT_TLS_KEY: certs.path('tls.key'),
      CONFIG_GRPC_XDS_SERVER_TLS_CACERT: certs.path('ca.crt'),
      FORCE_START_WITHOUT_INITIAL_CONFIG: 'true',
      REDIS_SOCKET_TYPE: 'tcp',
      REDIS_URL: `127.0.0.1:${redis.port}`,
      REDIS_TLS: 'true',
      REDIS_TLS_CLIENT_CERT: pki.client.cert,
      REDIS_TLS_CLIENT_KEY: pki.client.key,
      USE_PROMETHEUS: 'true',
      PROMETHEUS_ADDR: `127.0.0.1:${metricsPort}`,
      PROMETHEUS_MAPPER_YAML: '/etc/statsd-exporter/conf.yaml',
      // This run's additions (see the module comment).
      HOST: '127.0.0.1',
      PORT: String(httpPort),
      GRPC_HOST: '127.0.0.1',
      GRPC_PORT: String(grpcPort),
      REDIS_TLS_CACERT: pki.ca,
      GRPC_CLIENT_TLS_CACERT: certs.path('ca.crt'),
      GRPC_SERVER_TLS_RELOAD_INTERVAL: '200ms',
      CONFIG_GRPC_XDS_SERVER_CONNECT_RETRY_INTERVAL: '100ms',
      XDS_CLIENT_BACKOFF_INITIAL_INTERVAL: '100ms',
      XDS_CLIENT_BACKOFF_MAX_INTERVAL: '200ms',
      LOG_FORMAT: 'json',
    },
  });
  await eventually(async () => (await fetch(`${httpUrl}/healthcheck`).catch(() => undefined))?.status === 200, 30_000, 100).catch(() => {
    throw new Error(`meshlimit did not become ready:\n${proc.output()}`);
  });
}, 120_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await proc?.stop();
  await Promise.allSettled([xds?.stop(), redis?.stop()]);
  certs?.remove();
  pki?.remove();
});

describe("meshlimit with Envoy Gateway's environment", () => {
  it('enforces the config pushed over xDS, counting in the TLS Redis', async () => {
    const ack = await xds.waitForAck('v1');
    expect(ack.node).toMatchObject({ id: 'envoy-ratelimit' });
    const c = client();
    await eventually(async () => (await limitOf(c)) === 2);
    expect((await hit(c)).overallCode).toBe('OK');
    expect((await hit(c)).overallCode).toBe('OK');
    expect((await hit(c)).overallCode).toBe('OVER_LIMIT');
    expect(Number(await redisCommand(redis.port, ['DBSIZE']))).toBeGreaterThan(0);
    // Envoy Gateway's GRPC_SERVER_TLS_CA_CERT is said to be unread, not silently ignored.
    expect(proc.output()).toContain('GRPC_SERVER_TLS_CA_CERT is not read');
    // So are the upstream variables meshlimit accepts without using: one line.
    const ignored = proc
      .output()
      .split('\n')
      .filter((l) => l.includes('accepted and not used'));
    expect(ignored).toHaveLength(1);
    expect(JSON.parse(ignored[0]!).ignored).toEqual(['PROMETHEUS_MAPPER_YAML', 'USE_STATSD']);
    // The metrics port Envoy Gateway points Prometheus at serves meshlimit's series.
    const scraped = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(scraped).toMatch(/^meshlimit_requests_total\{outcome="over_limit"\} [1-9]/m);
  });

  it('applies a new version', async () => {
    xds.setSnapshot('v2', [config(5)]);
    await xds.waitForAck('v2');
    const c = client();
    await eventually(async () => (await limitOf(c)) === 5);
    // The two admitted hits carry over (a counter's identity leaves its threshold out).
    expect((await hit(c, 0)).statuses[0]!.limitRemaining).toBe(3);
  });

  it('NACKs an invalid version with its error, and the previous one keeps answering', async () => {
    const before = xds.requests.length;
    xds.setSnapshot('v3', [
      { config: { name: 'envoy-gateway/eg/http', domain: 'eg', descriptors: [{ key: 'route', rate_limit: { requests_per_unit: 1 } }] } },
    ]);
    const nack = await xds.waitForNack(before);
    expect(nack.versionInfo).toBe('v2');
    expect(nack.errorDetail).toEqual({ code: 13, message: `xds:envoy-gateway/eg/http: descriptors[0].rate_limit.unit: missing; ${UNITS}` });
    expect(await limitOf(client())).toBe(5);
  });

  it('keeps the last config while the management server is away', async () => {
    await xds.stop();
    const c = client();
    for (let i = 0; i < 5; i++) expect(await limitOf(c)).toBe(5);
    expect((await fetch(`${httpUrl}/healthcheck`)).status).toBe(200);
  });

  it('refuses clients without a valid certificate', async () => {
    await expect(hit(client(null))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expect(hit(client(pki.otherClient))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    const plaintext = createRlsClient(grpcTarget);
    clients.push(plaintext);
    await expect(hit(plaintext)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('serves a certificate rotated on disk to new connections, with calls in flight on an established one all answered', async () => {
    const established = client();
    expect(await peerSerial(established)).toBe(serialOf(pki.server.cert));
    // A continuous stream of calls over the established connection, across the rotation.
    let calls = 0;
    const failures: unknown[] = [];
    let stop = false;
    const stream = (async () => {
      while (!stop) {
        const inFlight = Array.from({ length: 4 }, () => hit(established, 0));
        for (const r of await Promise.allSettled(inFlight)) {
          if (r.status === 'rejected') failures.push(r.reason);
          else if (r.value.overallCode !== 'OK') failures.push(r.value);
          calls++;
        }
      }
    })();
    await eventually(async () => calls > 20, 10_000, 10);
    const atRotation = calls;
    certs.update({ 'tls.crt': rotated.cert, 'tls.key': rotated.key, 'ca.crt': pki.ca });
    // A new connection gets the new certificate (within a few reload intervals).
    await eventually(
      async () => {
        const fresh = client();
        const serial = await peerSerial(fresh).catch(() => '');
        fresh.close();
        return serial === serialOf(rotated.cert);
      },
      10_000,
      100,
    );
    const atNewCert = calls;
    await eventually(async () => calls > atNewCert + 20, 10_000, 10);
    stop = true;
    await stream;
    expect(failures).toEqual([]);
    expect(atNewCert).toBeGreaterThan(atRotation);
    // Still the connection it started with, with the certificate of its handshake.
    expect(await peerSerial(established)).toBe(serialOf(pki.server.cert));
    expect(await metricValue(httpUrl, 'meshlimit_grpc_tls_reloads_total{outcome="applied"}')).toBe(1);
    expect(await metricValue(httpUrl, 'meshlimit_grpc_tls_reloads_total{outcome="rejected"}')).toBe(0);
    expect(proc.output()).toContain(`"serial":"${serialOf(rotated.cert)}"`);
  });

  it('keeps serving the certificate in force when a rotation brings a key that does not match, and says so', async () => {
    // The new certificate with the previous key: a Secret written out of step.
    certs.update({ 'tls.crt': pki.server.cert, 'tls.key': rotated.key, 'ca.crt': pki.ca });
    await eventually(async () => (await metricValue(httpUrl, 'meshlimit_grpc_tls_reloads_total{outcome="rejected"}')) === 1, 10_000, 100);
    const fresh = client();
    expect(await peerSerial(fresh)).toBe(serialOf(rotated.cert));
    expect((await hit(fresh, 0)).overallCode).toBe('OK');
    expect(proc.output()).toContain('gRPC TLS files changed but cannot be used: the previous certificate stays in use');
    expect(proc.output()).toContain('does not match the certificate of GRPC_SERVER_TLS_CERT');
    expect(await metricValue(httpUrl, 'meshlimit_grpc_tls_reloads_total{outcome="applied"}')).toBe(1);
  });
});
