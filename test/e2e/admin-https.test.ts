import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootService, eventually, type BootedService } from '../support/service.js';
import { secretVolume, type SecretVolume } from '../support/secret-volume.js';
import { createTestPki, type CertFiles, type TestPki } from '../support/tls-pki.js';

/**
 * ADMIN_TLS_*: the HTTP port (health, /json, metrics, admin API) over HTTPS, with client
 * certificates when a client CA is set, and the certificate re-read from a Secret-like volume
 * while serving (new connections get the new one, an open keep-alive connection keeps working, a
 * set whose key does not match is refused and counted, the previous one stays).
 */
const CONFIG = 'domain: web\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 100 }\n';

let pki: TestPki;
let rotated: CertFiles;
beforeAll(() => {
  pki = createTestPki();
  rotated = pki.issue('admin-rotated', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
});
afterAll(() => pki?.remove());

interface Reply {
  readonly status: number;
  readonly body: string;
  /** Serial of the certificate the server presented on this connection. */
  readonly serial: string;
  /** The local port of the connection (the same for two requests on one keep-alive connection). */
  readonly localPort: number;
}

function get(port: number, path: string, o: { agent?: Agent; client?: CertFiles; method?: string; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: o.method ?? 'GET',
        ca: readFileSync(pki.ca),
        // Without an agent: a new connection and a full handshake (Node's global agent keeps connections alive).
        agent: o.agent ?? false,
        ...(o.client ? { cert: readFileSync(o.client.cert), key: readFileSync(o.client.key) } : {}),
      },
      (res) => {
        const socket = res.socket as TLSSocket;
        const serial = socket.getPeerCertificate().serialNumber;
        const localPort = socket.localPort ?? 0;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, serial, localPort }));
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

const serialOf = (file: string): string => new X509Certificate(readFileSync(file)).serialNumber;
const portOf = (svc: BootedService): number => svc.handle.httpPort;

describe('HTTPS on the HTTP port (ADMIN_TLS_CERT/KEY)', () => {
  let svc: BootedService;
  let volume: SecretVolume;
  beforeAll(async () => {
    volume = secretVolume({ 'tls.crt': pki.server.cert, 'tls.key': pki.server.key });
    svc = await bootService({
      files: { 'web.yaml': CONFIG },
      env: { ADMIN_TLS_CERT: volume.path('tls.crt'), ADMIN_TLS_KEY: volume.path('tls.key'), ADMIN_TLS_RELOAD_INTERVAL: '100ms' },
    });
  });
  afterAll(async () => {
    await svc?.close();
    volume?.remove();
  });

  it('answers health, /json and metrics over HTTPS with the configured certificate', async () => {
    const health = await get(portOf(svc), '/healthcheck');
    expect(health).toMatchObject({ status: 200, body: 'OK', serial: serialOf(pki.server.cert) });
    const json = await get(portOf(svc), '/json', {
      method: 'POST',
      body: '{"domain":"web","descriptors":[{"entries":[{"key":"k","value":"v"}]}]}',
    });
    expect(json.status).toBe(200);
    expect(JSON.parse(json.body)).toMatchObject({ overallCode: 'OK' });
    expect((await get(portOf(svc), '/metrics')).body).toContain('meshlimit_admin_tls_reloads_total{outcome="applied"} 0');
  });

  it('does not answer plaintext HTTP', async () => {
    const plain = await fetch(`http://127.0.0.1:${portOf(svc)}/healthcheck`).then(
      (r) => `status ${r.status}`,
      (err: unknown) => `failed: ${String(err)}`,
    );
    expect(plain).toMatch(/^failed/);
  });

  it('serves a rotated certificate to new connections while an open one keeps working; a bad set is refused and counted', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = await get(portOf(svc), '/healthcheck', { agent });
      expect(before.serial).toBe(serialOf(pki.server.cert));
      volume.update({ 'tls.crt': rotated.cert, 'tls.key': rotated.key });
      await eventually(async () => (await get(portOf(svc), '/healthcheck')).serial === serialOf(rotated.cert), 10_000, 100);
      // The keep-alive connection opened before the rotation: same socket, still answered.
      const after = await get(portOf(svc), '/healthcheck', { agent });
      expect(after).toMatchObject({ status: 200, localPort: before.localPort, serial: serialOf(pki.server.cert) });

      // A certificate with a key that is not its own: refused, counted, the rotated one stays.
      volume.update({ 'tls.crt': pki.server.cert, 'tls.key': rotated.key });
      const rejected = 'meshlimit_admin_tls_reloads_total{outcome="rejected"} 1';
      await eventually(async () => (await get(portOf(svc), '/metrics')).body.includes(rejected), 10_000, 100);
      expect((await get(portOf(svc), '/healthcheck')).serial).toBe(serialOf(rotated.cert));
    } finally {
      agent.destroy();
    }
  });
});

describe('mTLS on the HTTP port (ADMIN_TLS_CLIENT_CACERT)', () => {
  let svc: BootedService;
  beforeAll(async () => {
    svc = await bootService({
      files: { 'web.yaml': CONFIG },
      env: { ADMIN_TLS_CERT: pki.server.cert, ADMIN_TLS_KEY: pki.server.key, ADMIN_TLS_CLIENT_CACERT: pki.ca },
    });
  });
  afterAll(async () => svc?.close());

  it('answers a client with a certificate from the CA', async () => {
    expect(await get(portOf(svc), '/healthcheck', { client: pki.client })).toMatchObject({ status: 200, body: 'OK' });
  });

  it('refuses a client without a certificate, and one from another CA', async () => {
    await expect(get(portOf(svc), '/healthcheck')).rejects.toThrow();
    await expect(get(portOf(svc), '/healthcheck', { client: pki.otherClient })).rejects.toThrow();
  });
});
