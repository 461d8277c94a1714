import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../../src/settings/index.js';
import { settingsErrorOf } from '../../support/settings-error.js';
import { createTestPki, type TestPki } from '../../support/tls-pki.js';

/**
 * GRPC_SERVER_USE_TLS and its files, read and checked at start-up against a generated PKI: each
 * problem stops start-up with an error naming the setting and the file.
 */

let pki: TestPki;
beforeAll(() => {
  pki = createTestPki();
  writeFileSync(path.join(pki.dir, 'garbage.pem'), 'this is not PEM\n');
});
afterAll(() => pki?.remove());

const tls = (extra: Record<string, string> = {}) => ({
  GRPC_SERVER_USE_TLS: 'true',
  GRPC_SERVER_TLS_CERT: pki.server.cert,
  GRPC_SERVER_TLS_KEY: pki.server.key,
  ...extra,
});
const errorOf = settingsErrorOf;

describe('gRPC server TLS settings', () => {
  it("loads Envoy Gateway's environment: TLS on, GRPC_SERVER_TLS_CA_CERT kept aside as unread", () => {
    const s = loadSettings(tls({ GRPC_SERVER_TLS_CA_CERT: pki.ca }));
    expect(s.grpc.tls).toEqual({
      certFile: pki.server.cert,
      keyFile: pki.server.key,
      clientCaFile: undefined,
      clientSan: undefined,
      reloadIntervalMs: 10_000,
      unusedCaFile: pki.ca,
    });
    expect(s.grpc.uds).toBeUndefined();
  });

  it('mTLS with a client SAN, a reload interval, and a unix socket', () => {
    const s = loadSettings(
      tls({
        GRPC_CLIENT_TLS_CACERT: pki.ca,
        GRPC_CLIENT_TLS_SAN: 'envoy.rls.test',
        GRPC_SERVER_TLS_RELOAD_INTERVAL: '500ms',
        GRPC_UDS: '/var/run/rls.sock',
      }),
    );
    expect(s.grpc.tls).toMatchObject({ clientCaFile: pki.ca, clientSan: 'envoy.rls.test', reloadIntervalMs: 500 });
    expect(s.grpc.uds).toBe('/var/run/rls.sock');
  });

  it('TLS files or a client CA without GRPC_SERVER_USE_TLS=true are errors', () => {
    expect(errorOf({ GRPC_CLIENT_TLS_CACERT: pki.ca })).toBe(
      'setting GRPC_CLIENT_TLS_CACERT: is set but GRPC_SERVER_USE_TLS is not true: the gRPC port would serve plaintext',
    );
    expect(errorOf({ GRPC_SERVER_TLS_CERT: pki.server.cert, GRPC_SERVER_USE_TLS: 'false' })).toMatch(
      /^setting GRPC_SERVER_TLS_CERT: is set but GRPC_SERVER_USE_TLS is not true/,
    );
  });

  it('TLS needs both the certificate and its key; a SAN needs a client CA', () => {
    expect(errorOf({ GRPC_SERVER_USE_TLS: 'true', GRPC_SERVER_TLS_KEY: pki.server.key })).toBe(
      'setting GRPC_SERVER_TLS_CERT: is required with GRPC_SERVER_USE_TLS=true: the server presents a certificate with its private key',
    );
    expect(errorOf(tls({ GRPC_CLIENT_TLS_SAN: 'envoy.rls.test' }))).toBe(
      'setting GRPC_CLIENT_TLS_SAN: needs GRPC_CLIENT_TLS_CACERT: without a client CA no client certificate is asked for, so there is no SAN to check',
    );
  });

  it('a missing file, a file without PEM, and a key that does not match are errors naming the setting and path', () => {
    const missing = path.join(pki.dir, 'missing.crt');
    expect(errorOf(tls({ GRPC_SERVER_TLS_CERT: missing }))).toBe(
      `setting GRPC_SERVER_TLS_CERT: cannot read ${JSON.stringify(missing)}: ENOENT: no such file or directory, open '${missing}'`,
    );
    const garbage = path.join(pki.dir, 'garbage.pem');
    expect(errorOf(tls({ GRPC_CLIENT_TLS_CACERT: garbage }))).toBe(
      `setting GRPC_CLIENT_TLS_CACERT: ${JSON.stringify(garbage)} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    );
    expect(errorOf(tls({ GRPC_SERVER_TLS_KEY: garbage }))).toBe(
      `setting GRPC_SERVER_TLS_KEY: ${JSON.stringify(garbage)} holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)`,
    );
    expect(errorOf(tls({ GRPC_SERVER_TLS_KEY: pki.client.key }))).toMatch(
      new RegExp(
        `^setting GRPC_SERVER_TLS_KEY: ${JSON.stringify(pki.client.key)} does not match the certificate of GRPC_SERVER_TLS_CERT: `,
      ),
    );
  });

  it('bounds GRPC_UDS, GRPC_CLIENT_TLS_SAN and the reload interval', () => {
    expect(errorOf({ GRPC_UDS: 'rls.sock' })).toBe('setting GRPC_UDS: expected an absolute path for the unix socket, got "rls.sock"');
    expect(errorOf({ GRPC_UDS: `/${'x'.repeat(107)}` })).toBe('setting GRPC_UDS: a unix socket path is at most 107 bytes, got 108');
    expect(errorOf(tls({ GRPC_CLIENT_TLS_CACERT: pki.ca, GRPC_CLIENT_TLS_SAN: 'a.test,b.test' }))).toBe(
      'setting GRPC_CLIENT_TLS_SAN: expected one DNS name or IP address, got "a.test,b.test"',
    );
    expect(errorOf(tls({ GRPC_SERVER_TLS_RELOAD_INTERVAL: '10ms' }))).toBe(
      'setting GRPC_SERVER_TLS_RELOAD_INTERVAL: expected a duration from 100ms to 3600s, got "10ms"',
    );
  });
});
