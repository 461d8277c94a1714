import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../../src/settings/index.js';
import { settingsErrorOf } from '../../support/settings-error.js';
import { createTestPki, type TestPki } from '../../support/tls-pki.js';

/** ADMIN_TLS_*: read and checked at start-up; each problem names the setting (and the file). */
let pki: TestPki;
beforeAll(() => {
  pki = createTestPki();
});
afterAll(() => pki?.remove());

const errorOf = settingsErrorOf;

describe('HTTP port TLS settings', () => {
  it('off by default; on with a certificate and its key; mTLS with a client CA', () => {
    expect(loadSettings({}).admin.tls).toBeUndefined();
    expect(loadSettings({ ADMIN_TLS_CERT: pki.server.cert, ADMIN_TLS_KEY: pki.server.key }).admin.tls).toEqual({
      certFile: pki.server.cert,
      keyFile: pki.server.key,
      clientCaFile: undefined,
      reloadIntervalMs: 10_000,
    });
    const mtls = loadSettings({
      ADMIN_TLS_CERT: pki.server.cert,
      ADMIN_TLS_KEY: pki.server.key,
      ADMIN_TLS_CLIENT_CACERT: pki.ca,
      ADMIN_TLS_RELOAD_INTERVAL: '2s',
    });
    expect(mtls.admin.tls).toMatchObject({ clientCaFile: pki.ca, reloadIntervalMs: 2000 });
  });

  it('a certificate without its key, a key or a client CA without a certificate are errors', () => {
    expect(errorOf({ ADMIN_TLS_CERT: pki.server.cert })).toBe(
      "setting ADMIN_TLS_KEY: is required with ADMIN_TLS_CERT: the certificate's private key",
    );
    expect(errorOf({ ADMIN_TLS_KEY: pki.server.key })).toMatch(/^setting ADMIN_TLS_CERT: is required with ADMIN_TLS_KEY/);
    expect(errorOf({ ADMIN_TLS_CLIENT_CACERT: pki.ca })).toMatch(/setting ADMIN_TLS_CERT: is required with ADMIN_TLS_CLIENT_CACERT/);
  });

  it('a missing file and a key that does not match name the setting and the path', () => {
    const missing = path.join(pki.dir, 'missing.crt');
    expect(errorOf({ ADMIN_TLS_CERT: missing, ADMIN_TLS_KEY: pki.server.key })).toContain(
      `setting ADMIN_TLS_CERT: cannot read ${JSON.stringify(missing)}`,
    );
    expect(errorOf({ ADMIN_TLS_CERT: pki.server.cert, ADMIN_TLS_KEY: pki.client.key })).toContain(
      `setting ADMIN_TLS_KEY: ${JSON.stringify(pki.client.key)} does not match the certificate of ADMIN_TLS_CERT`,
    );
  });
});
