import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SettingsError } from '../../../src/errors.js';
import { loadSettings, redactedSettings } from '../../../src/settings/index.js';
import { createTestPki, type TestPki } from '../../support/tls-pki.js';

/**
 * REDIS_TLS_CACERT, REDIS_TLS_CLIENT_CERT and REDIS_TLS_CLIENT_KEY read from real files (a PKI
 * generated for this run) at start-up: what reaches the connection, and the error, naming the
 * setting and the file, for each way a file can be wrong. (The checks that need no file are in
 * test/unit/settings/redis-tls.test.ts.)
 */

let pki: TestPki;
beforeAll(() => {
  pki = createTestPki();
});
afterAll(() => pki?.remove());

function errorOf(env: Record<string, string>): SettingsError {
  try {
    loadSettings(env);
  } catch (err) {
    expect(err).toBeInstanceOf(SettingsError);
    return err as SettingsError;
  }
  throw new Error('loadSettings did not throw');
}

const files = (): Record<string, string> => ({
  REDIS_TLS_CACERT: pki.ca,
  REDIS_TLS_CLIENT_CERT: pki.client.cert,
  REDIS_TLS_CLIENT_KEY: pki.client.key,
});

describe('TLS files read at start-up', () => {
  it('carries their PEM text to the connection options of both Redis, and their paths for logs', () => {
    const s = loadSettings({ REDIS_TLS: 'true', ...files(), REDIS_PERSECOND: 'true', REDIS_PERSECOND_URL: 'rediss://ps:6380' });
    const pem = {
      ca: readFileSync(pki.ca, 'utf8'),
      cert: readFileSync(pki.client.cert, 'utf8'),
      key: readFileSync(pki.client.key, 'utf8'),
    };
    expect(s.redis).toMatchObject({ tls: true, tlsOptions: pem, tlsSkipHostnameVerification: false });
    expect(s.redis.tlsFiles).toEqual({ caCert: pki.ca, clientCert: pki.client.cert, clientKey: pki.client.key });
    expect(s.redisPerSecond).toMatchObject({ tls: true, tlsOptions: pem, tlsFiles: s.redis.tlsFiles });
    expect(Object.isFrozen(s.redis.tlsOptions)).toBe(true);
  });

  it('a CA bundle alone is fine (a server that does not ask for a client certificate)', () => {
    const s = loadSettings({ REDIS_URL: 'rediss://h:6380', REDIS_TLS_CACERT: pki.ca });
    expect(s.redis.tlsOptions).toEqual({ ca: readFileSync(pki.ca, 'utf8') });
  });

  it('the per-second Redis alone may use TLS: the files are then for it', () => {
    const s = loadSettings({ ...files(), REDIS_PERSECOND: 'true', REDIS_PERSECOND_URL: 'ps:6380', REDIS_PERSECOND_TLS: 'true' });
    expect(s.redis.tls).toBe(false);
    expect(s.redisPerSecond).toMatchObject({ tls: true, tlsOptions: { ca: readFileSync(pki.ca, 'utf8') } });
  });

  it('redactedSettings never shows the private key, nor the certificates, only their paths', () => {
    const r = redactedSettings(loadSettings({ REDIS_TLS: 'true', ...files() }));
    const text = JSON.stringify(r);
    expect(text).not.toContain('PRIVATE KEY');
    expect(text).not.toContain('BEGIN CERTIFICATE');
    expect(r.redis.tlsOptions).toEqual({ ca: '[PEM]', cert: '[PEM]', key: '[REDACTED]' });
    expect(r.redis.tlsFiles).toEqual({ caCert: pki.ca, clientCert: pki.client.cert, clientKey: pki.client.key });
  });

  it('names the setting and the file it could not read', () => {
    const missing = join(pki.dir, 'no-such-ca.pem');
    expect(errorOf({ REDIS_TLS: 'true', REDIS_TLS_CACERT: missing }).message).toBe(
      `setting REDIS_TLS_CACERT: cannot read "${missing}": ENOENT: no such file or directory, open '${missing}'`,
    );
    expect(errorOf({ REDIS_TLS: 'true', ...files(), REDIS_TLS_CLIENT_KEY: pki.dir }).message).toBe(
      `setting REDIS_TLS_CLIENT_KEY: cannot read "${pki.dir}": EISDIR: illegal operation on a directory, read`,
    );
  });

  it("refuses a key that is not the certificate's", () => {
    const err = errorOf({ REDIS_TLS: 'true', ...files(), REDIS_TLS_CLIENT_KEY: pki.server.key });
    expect(err.message).toMatch(
      new RegExp(
        `^setting REDIS_TLS_CLIENT_KEY: "${pki.server.key}" does not match the certificate of REDIS_TLS_CLIENT_CERT: .*key values mismatch`,
      ),
    );
    expect(err.message).not.toContain('PRIVATE KEY');
  });

  it('refuses files swapped around, and reports every bad one at once', () => {
    const err = errorOf({
      REDIS_TLS: 'true',
      REDIS_TLS_CACERT: pki.client.key,
      REDIS_TLS_CLIENT_CERT: pki.client.key,
      REDIS_TLS_CLIENT_KEY: pki.client.cert,
    });
    expect(err.message.split('\n')).toEqual([
      `setting REDIS_TLS_CACERT: "${pki.client.key}" holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      `setting REDIS_TLS_CLIENT_CERT: "${pki.client.key}" holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      `setting REDIS_TLS_CLIENT_KEY: "${pki.client.cert}" holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)`,
    ]);
  });
});
