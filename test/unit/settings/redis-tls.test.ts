import { describe, expect, it } from 'vitest';
import type { SettingsError } from '../../../src/errors.js';
import { loadSettings } from '../../../src/settings/index.js';
import { loadRedisTls, type RedisTlsInputs } from '../../../src/settings/redis-tls.js';

/**
 * The REDIS_TLS_* checks that need no real certificate, with an in-memory file reader (no I/O).
 * Real files (a generated PKI: parsing, key/certificate pairing) are tested in
 * test/integration/tls/settings.test.ts.
 */

const none: RedisTlsInputs = {
  caCert: undefined,
  clientCert: undefined,
  clientKey: undefined,
  skipHostnameVerification: false,
  anyTls: true,
};

function load(p: Partial<RedisTlsInputs>, files: Record<string, string> = {}): { errors: string[]; result: unknown } {
  const errors: SettingsError[] = [];
  const read = (path: string): string => {
    const text = files[path];
    if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
    return text;
  };
  const result = loadRedisTls({ ...none, ...p }, errors, read);
  return { errors: errors.map((e) => e.message), result };
}

describe('REDIS_TLS_CACERT, REDIS_TLS_CLIENT_CERT, REDIS_TLS_CLIENT_KEY', () => {
  it('nothing set: no TLS material, the skip flag carried as given', () => {
    expect(load({})).toEqual({
      errors: [],
      result: { tlsOptions: undefined, tlsSkipHostnameVerification: false, tlsFiles: {} },
    });
    expect(load({ skipHostnameVerification: true, anyTls: false }).result).toMatchObject({ tlsSkipHostnameVerification: true });
  });

  it('refuses files when no connection uses TLS, naming each setting and reading none of them', () => {
    const files = { '/ca.pem': 'unused' };
    expect(load({ caCert: '/ca.pem', clientCert: '/c.pem', clientKey: '/k.pem', anyTls: false }, files)).toEqual({
      errors: [
        'setting REDIS_TLS_CACERT: is set but no Redis connection uses TLS: set REDIS_TLS=true (or REDIS_PERSECOND_TLS=true), or use rediss://',
        'setting REDIS_TLS_CLIENT_CERT: is set but no Redis connection uses TLS: set REDIS_TLS=true (or REDIS_PERSECOND_TLS=true), or use rediss://',
        'setting REDIS_TLS_CLIENT_KEY: is set but no Redis connection uses TLS: set REDIS_TLS=true (or REDIS_PERSECOND_TLS=true), or use rediss://',
      ],
      result: undefined,
    });
  });

  it('wants a client certificate and its key together', () => {
    expect(load({ clientCert: '/c.pem' }).errors[0]).toBe(
      'setting REDIS_TLS_CLIENT_KEY: is required when REDIS_TLS_CLIENT_CERT is set: a client certificate is presented with its private key',
    );
    expect(load({ clientKey: '/k.pem' }).errors[0]).toBe(
      'setting REDIS_TLS_CLIENT_CERT: is required when REDIS_TLS_CLIENT_KEY is set: a client certificate is presented with its private key',
    );
  });

  it('says which file could not be read and which setting named it', () => {
    expect(load({ caCert: '/etc/redis/missing-ca.pem' }).errors).toEqual([
      `setting REDIS_TLS_CACERT: cannot read "/etc/redis/missing-ca.pem": ENOENT: no such file or directory, open '/etc/redis/missing-ca.pem'`,
    ]);
  });

  it('refuses files that hold no PEM certificate or key, without quoting them', () => {
    const files = { '/ca.pem': 'not a certificate', '/c.pem': 'hunter2-cert', '/k.pem': 'hunter2-key' };
    const { errors, result } = load({ caCert: '/ca.pem', clientCert: '/c.pem', clientKey: '/k.pem' }, files);
    expect(result).toBeUndefined();
    expect(errors).toEqual([
      'setting REDIS_TLS_CACERT: "/ca.pem" holds no PEM certificate (-----BEGIN CERTIFICATE-----)',
      'setting REDIS_TLS_CLIENT_CERT: "/c.pem" holds no PEM certificate (-----BEGIN CERTIFICATE-----)',
      'setting REDIS_TLS_CLIENT_KEY: "/k.pem" holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)',
    ]);
    expect(errors.join('\n')).not.toContain('hunter2');
  });

  it('refuses a PEM block that does not parse', () => {
    const bad = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    expect(load({ caCert: '/ca.pem' }, { '/ca.pem': bad }).errors[0]).toMatch(
      /^setting REDIS_TLS_CACERT: "\/ca\.pem" holds a certificate that does not parse \(#1\): /,
    );
    const key = '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n';
    expect(load({ clientCert: '/c.pem', clientKey: '/k.pem' }, { '/c.pem': bad, '/k.pem': key }).errors[1]).toMatch(
      /^setting REDIS_TLS_CLIENT_KEY: "\/k\.pem" holds a private key that cannot be used \(an encrypted key is not supported\): /,
    );
  });

  it('loadSettings reports them as settings errors (checks that come before any file is read)', () => {
    expect(() => loadSettings({ REDIS_TLS_CACERT: '/ca.pem' })).toThrow(
      'setting REDIS_TLS_CACERT: is set but no Redis connection uses TLS: set REDIS_TLS=true (or REDIS_PERSECOND_TLS=true), or use rediss://',
    );
    expect(() => loadSettings({ REDIS_TLS: 'true', REDIS_TLS_CLIENT_KEY: '/k.pem', REDIS_TLS_CLIENT_CERT: '' })).toThrow(
      /^setting REDIS_TLS_CLIENT_CERT: is required when REDIS_TLS_CLIENT_KEY is set/,
    );
  });

  it('REDIS_TLS_SKIP_HOSTNAME_VERIFICATION reaches both Redis settings', () => {
    const s = loadSettings({
      REDIS_TLS: 'true',
      REDIS_TLS_SKIP_HOSTNAME_VERIFICATION: 'true',
      REDIS_PERSECOND: 'true',
      REDIS_PERSECOND_URL: 'ps:1',
    });
    expect(s.redis).toMatchObject({ tls: true, tlsSkipHostnameVerification: true, tlsOptions: undefined });
    expect(s.redisPerSecond).toMatchObject({ tls: false, tlsSkipHostnameVerification: true });
  });
});
