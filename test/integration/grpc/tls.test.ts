import { X509Certificate } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { lstatSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRlsClient, type RlsClient } from '../../../src/client/rls-client.js';
import { HealthState } from '../../../src/server/grpc/health.js';
import { createGrpcServer, type GrpcServer } from '../../../src/server/grpc/server.js';
import { createGrpcTls, type GrpcTls } from '../../../src/server/grpc/tls.js';
import type { TlsReloadEvent } from '../../../src/telemetry/events.js';
import type { TransportAction } from '../../../src/telemetry/metrics.js';
import { secretVolume, type SecretVolume } from '../../support/secret-volume.js';
import { createTestPki, type CertFiles, type TestPki } from '../../support/tls-pki.js';
import { defaultBehaviour } from './harness.js';

/**
 * The gRPC port over TLS (src/server/grpc/tls.ts) on a real grpc-js server and real clients:
 * TLS alone and mTLS (each through grpc-js's certificate-provider credentials, whose argument
 * order this checks), the client SAN, certificates rotated in a Secret-like directory while a
 * connection stays up, a bad rotation kept out, and GRPC_UDS.
 */

let pki: TestPki;
let rotated: CertFiles;
let sanClient: CertFiles;
beforeAll(() => {
  pki = createTestPki();
  rotated = pki.issue('server-2', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
  sanClient = pki.issue('envoy-client', 'subjectAltName=DNS:envoy.rls.test\nextendedKeyUsage=clientAuth');
});
afterAll(() => pki?.remove());

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Running {
  readonly grpc: GrpcServer;
  readonly tls: GrpcTls;
  readonly port: number;
  readonly reloads: TlsReloadEvent[];
  readonly actions: TransportAction[];
  readonly volume: SecretVolume;
}

async function start(o: { clientCa?: boolean; clientSan?: string } = {}): Promise<Running> {
  const volume = secretVolume({ 'tls.crt': pki.server.cert, 'tls.key': pki.server.key, 'ca.crt': pki.ca });
  const reloads: TlsReloadEvent[] = [];
  const actions: TransportAction[] = [];
  const tls = createGrpcTls({
    certFile: volume.path('tls.crt'),
    keyFile: volume.path('tls.key'),
    clientCaFile: o.clientCa === true ? volume.path('ca.crt') : undefined,
    clientSan: o.clientSan,
    reloadIntervalMs: 3_600_000, // the tests call check() themselves
    onReload: (e) => reloads.push(e),
  });
  const grpcServer = createGrpcServer({
    limiter: { shouldRateLimit: (check) => defaultBehaviour(check, {}) },
    health: new HealthState(true),
    tls,
    onTransportAction: (a) => actions.push(a),
  });
  const port = await grpcServer.listen('127.0.0.1', 0);
  cleanups.push(
    () => grpcServer.close(200),
    () => volume.remove(),
  );
  return { grpc: grpcServer, tls, port, reloads, actions, volume };
}

function client(port: number, cert?: CertFiles, ca = pki.ca): RlsClient {
  const credentials = grpc.credentials.createSsl(
    readFileSync(ca),
    cert === undefined ? null : readFileSync(cert.key),
    cert === undefined ? null : readFileSync(cert.cert),
  );
  const c = createRlsClient(`127.0.0.1:${port}`, { credentials });
  cleanups.push(() => c.close());
  return c;
}

const ask = (c: RlsClient) => c.shouldRateLimit({ domain: 'edge', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }] });

/** The serial of the certificate a new TLS connection is served (or the handshake's error). */
function servedSerial(port: number, cert?: CertFiles): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: readFileSync(pki.ca),
      ALPNProtocols: ['h2'],
      ...(cert === undefined ? {} : { cert: readFileSync(cert.cert), key: readFileSync(cert.key) }),
    });
    socket.once('secureConnect', () => {
      resolve(socket.getPeerX509Certificate()!.serialNumber);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

const serialOf = (file: string): string => new X509Certificate(readFileSync(file)).serialNumber;

describe('gRPC over TLS', () => {
  it('serves TLS without asking for a client certificate, and refuses plaintext', async () => {
    const r = await start();
    expect((await ask(client(r.port))).overallCode).toBe('OK');
    expect(await servedSerial(r.port)).toBe(serialOf(pki.server.cert));
    const plain = createRlsClient(`127.0.0.1:${r.port}`);
    cleanups.push(() => plain.close());
    await expect(ask(plain)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('mTLS: a client certificate from the CA is required', async () => {
    const r = await start({ clientCa: true });
    expect((await ask(client(r.port, pki.client))).overallCode).toBe('OK');
    await expect(ask(client(r.port))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expect(ask(client(r.port, pki.otherClient))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('GRPC_CLIENT_TLS_SAN: a verified client without the name is disconnected and counted', async () => {
    const r = await start({ clientCa: true, clientSan: 'envoy.rls.test' });
    expect((await ask(client(r.port, sanClient))).overallCode).toBe('OK');
    await expect(ask(client(r.port, pki.client))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(r.actions).toContain('san_refused');
    expect(r.actions.every((a) => a === 'san_refused')).toBe(true);
  });

  it('a rotated certificate is served to new connections while an established one keeps calling', async () => {
    const r = await start({ clientCa: true });
    const c = client(r.port, pki.client);
    expect((await ask(c)).overallCode).toBe('OK');
    expect(await servedSerial(r.port, pki.client)).toBe(serialOf(pki.server.cert));
    r.volume.update({ 'tls.crt': rotated.cert, 'tls.key': rotated.key, 'ca.crt': pki.ca });
    await r.tls.watcher.check();
    expect(r.reloads).toEqual([{ result: 'applied', serial: serialOf(rotated.cert), fingerprint256: expect.any(String) }]);
    expect(await servedSerial(r.port, pki.client)).toBe(serialOf(rotated.cert));
    // The established connection and the calls on it go on.
    for (let i = 0; i < 20; i++) expect((await ask(c)).overallCode).toBe('OK');
    // Unchanged files: nothing to report.
    await r.tls.watcher.check();
    expect(r.reloads).toHaveLength(1);
  });

  it('a rotation that does not check out is reported once and the previous certificate stays', async () => {
    const r = await start();
    // A new certificate with the old key (the two halves of an update out of step), then a
    // certificate file holding no certificate.
    r.volume.update({ 'tls.crt': rotated.cert, 'tls.key': pki.server.key, 'ca.crt': pki.ca });
    await r.tls.watcher.check();
    await r.tls.watcher.check();
    expect(r.reloads).toEqual([
      {
        result: 'rejected',
        reason: expect.stringMatching(/^GRPC_SERVER_TLS_KEY ".*tls\.key" does not match the certificate of GRPC_SERVER_TLS_CERT: /),
      },
    ]);
    expect(await servedSerial(r.port)).toBe(serialOf(pki.server.cert));
    const garbage = path.join(pki.dir, 'garbage.crt');
    writeFileSync(garbage, 'not a certificate\n');
    r.volume.update({ 'tls.crt': garbage, 'tls.key': pki.server.key, 'ca.crt': pki.ca });
    await r.tls.watcher.check();
    expect(r.reloads[1]).toEqual({ result: 'rejected', reason: expect.stringContaining('holds no PEM certificate') });
    expect((await ask(client(r.port))).overallCode).toBe('OK');
    expect(await servedSerial(r.port)).toBe(serialOf(pki.server.cert));
    // Fixed: applied.
    r.volume.update({ 'tls.crt': rotated.cert, 'tls.key': rotated.key, 'ca.crt': pki.ca });
    await r.tls.watcher.check();
    expect(r.reloads[2]).toMatchObject({ result: 'applied', serial: serialOf(rotated.cert) });
    expect(await servedSerial(r.port)).toBe(serialOf(rotated.cert));
  });

  it('polls the files at the reload interval', async () => {
    const volume = secretVolume({ 'tls.crt': pki.server.cert, 'tls.key': pki.server.key });
    cleanups.push(() => volume.remove());
    const reloads: TlsReloadEvent[] = [];
    const tls = createGrpcTls({
      certFile: volume.path('tls.crt'),
      keyFile: volume.path('tls.key'),
      clientCaFile: undefined,
      clientSan: undefined,
      reloadIntervalMs: 100,
      onReload: (e) => reloads.push(e),
    });
    const g = createGrpcServer({
      limiter: { shouldRateLimit: (check) => defaultBehaviour(check, {}) },
      health: new HealthState(true),
      tls,
    });
    const port = await g.listen('127.0.0.1', 0);
    cleanups.push(() => g.close(200));
    volume.update({ 'tls.crt': rotated.cert, 'tls.key': rotated.key });
    for (let i = 0; i < 100 && reloads.length === 0; i++) await new Promise((res) => setTimeout(res, 50));
    expect(reloads).toMatchObject([{ result: 'applied', serial: serialOf(rotated.cert) }]);
    expect(await servedSerial(port)).toBe(serialOf(rotated.cert));
  });
});

describe('GRPC_UDS', () => {
  const socketPath = () => path.join(pki.dir, `rls-${process.pid}-${Math.random().toString(36).slice(2, 8)}.sock`);
  const serve = async (at: string) => {
    const g = createGrpcServer({ limiter: { shouldRateLimit: (check) => defaultBehaviour(check, {}) }, health: new HealthState(true) });
    cleanups.push(() => g.close(200));
    await g.listenUnix(at);
    return g;
  };

  it('serves on a unix socket, replacing a stale socket file', async () => {
    const at = socketPath();
    // A socket file nobody listens on any more: its process was killed (so it never unlinked it).
    const script = `require('net').createServer().listen(${JSON.stringify(at)}, () => process.kill(process.pid, 'SIGKILL'))`;
    spawnSync(process.execPath, ['-e', script]);
    expect(lstatSync(at).isSocket()).toBe(true);
    await serve(at);
    const c = createRlsClient(`unix:${at}`);
    cleanups.push(() => c.close());
    expect((await ask(c)).overallCode).toBe('OK');
  });

  it('refuses a path held by a live server or by another kind of file', async () => {
    const at = socketPath();
    await serve(at);
    const second = createGrpcServer({
      limiter: { shouldRateLimit: (check) => defaultBehaviour(check, {}) },
      health: new HealthState(true),
    });
    cleanups.push(() => second.close(0));
    await expect(second.listenUnix(at)).rejects.toThrow(`GRPC_UDS: another process is serving on ${JSON.stringify(at)}`);
    const file = path.join(pki.dir, 'not-a-socket');
    writeFileSync(file, '');
    await expect(second.listenUnix(file)).rejects.toThrow(/exists and is not a unix socket/);
  });
});
