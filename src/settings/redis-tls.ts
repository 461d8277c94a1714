import { readFileSync } from 'node:fs';
import { SettingsError } from '../errors.js';
import { certificatesProblem, keyProblem, pairProblem } from '../util/pem.js';
import type { RedisTlsFiles, RedisTlsPem } from './redis.js';

/**
 * REDIS_TLS_CACERT, REDIS_TLS_CLIENT_CERT and REDIS_TLS_CLIENT_KEY (envoyproxy/ratelimit's
 * names): the files are read once, at start-up, and checked there, so a missing file, a bundle
 * without a certificate or a key that does not match its certificate stops start-up with an
 * error naming the setting and the path, instead of surfacing later as a failed handshake on
 * every reconnect. Their PEM text then goes, as it is, into every TLS connection (the main Redis
 * and the per-second one, one TLS configuration for both as upstream).
 *
 * Stricter than upstream, on purpose: a certificate without its key (or the reverse) is an error
 * (upstream silently uses neither), and so are TLS files when no connection uses TLS (upstream
 * ignores them, leaving a user believing mutual TLS is on).
 */

/** The TLS material of the Redis settings: what {@link loadRedisTls} read. */
export interface RedisTlsMaterial {
  readonly tlsOptions: RedisTlsPem | undefined;
  readonly tlsSkipHostnameVerification: boolean;
  readonly tlsFiles: RedisTlsFiles;
}

export interface RedisTlsInputs {
  readonly caCert: string | undefined;
  readonly clientCert: string | undefined;
  readonly clientKey: string | undefined;
  readonly skipHostnameVerification: boolean;
  /** Some Redis connection uses TLS (REDIS_TLS, REDIS_PERSECOND_TLS or a rediss:// URL). */
  readonly anyTls: boolean;
}

/** Reads one file as text; the default reads from disk (tests may pass another reader). */
export type FileReader = (path: string) => string;
const readText: FileReader = (path) => readFileSync(path, 'utf8');

/**
 * Reads and checks the TLS files; every problem is pushed onto `errors` (one per setting) and the
 * result is then undefined.
 */
export function loadRedisTls(p: RedisTlsInputs, errors: SettingsError[], read: FileReader = readText): RedisTlsMaterial | undefined {
  const before = errors.length;
  const files: RedisTlsFiles = {
    ...(p.caCert === undefined ? {} : { caCert: p.caCert }),
    ...(p.clientCert === undefined ? {} : { clientCert: p.clientCert }),
    ...(p.clientKey === undefined ? {} : { clientKey: p.clientKey }),
  };
  const given: [string, string | undefined][] = [
    ['REDIS_TLS_CACERT', p.caCert],
    ['REDIS_TLS_CLIENT_CERT', p.clientCert],
    ['REDIS_TLS_CLIENT_KEY', p.clientKey],
  ];
  if (!p.anyTls) {
    for (const [name, path] of given)
      if (path !== undefined)
        errors.push(
          new SettingsError(
            name,
            'is set but no Redis connection uses TLS: set REDIS_TLS=true (or REDIS_PERSECOND_TLS=true), or use rediss://',
          ),
        );
    return errors.length > before
      ? undefined
      : { tlsOptions: undefined, tlsSkipHostnameVerification: p.skipHostnameVerification, tlsFiles: files };
  }
  if ((p.clientCert === undefined) !== (p.clientKey === undefined)) {
    const [missing, present] =
      p.clientCert === undefined ? ['REDIS_TLS_CLIENT_CERT', 'REDIS_TLS_CLIENT_KEY'] : ['REDIS_TLS_CLIENT_KEY', 'REDIS_TLS_CLIENT_CERT'];
    errors.push(new SettingsError(missing, `is required when ${present} is set: a client certificate is presented with its private key`));
  }
  const ca = readPem('REDIS_TLS_CACERT', p.caCert, read, errors, certificatesProblem);
  const cert = readPem('REDIS_TLS_CLIENT_CERT', p.clientCert, read, errors, certificatesProblem);
  const key = readPem('REDIS_TLS_CLIENT_KEY', p.clientKey, read, errors, keyProblem);
  if (cert !== undefined && key !== undefined) {
    const mismatch = pairProblem(cert, key);
    if (mismatch !== undefined)
      errors.push(
        new SettingsError(
          'REDIS_TLS_CLIENT_KEY',
          `${JSON.stringify(p.clientKey)} does not match the certificate of REDIS_TLS_CLIENT_CERT: ${mismatch}`,
        ),
      );
  }
  if (errors.length > before) return undefined;
  const pem: RedisTlsPem = {
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  };
  return {
    tlsOptions: Object.keys(pem).length === 0 ? undefined : pem,
    tlsSkipHostnameVerification: p.skipHostnameVerification,
    tlsFiles: files,
  };
}

/** The text of the file `setting` names, checked by `problem`; undefined (with an error pushed) when unreadable or wrong. */
export function readPem(
  setting: string,
  path: string | undefined,
  read: FileReader,
  errors: SettingsError[],
  problem: (text: string) => string | undefined,
): string | undefined {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = read(path);
  } catch (err) {
    errors.push(new SettingsError(setting, `cannot read ${JSON.stringify(path)}: ${err instanceof Error ? err.message : String(err)}`));
    return undefined;
  }
  const wrong = problem(text);
  if (wrong === undefined) return text;
  errors.push(new SettingsError(setting, `${JSON.stringify(path)} ${wrong}`));
  return undefined;
}
